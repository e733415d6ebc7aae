// Package reward scores (prompt, candidate) pairs with an ONNX-exported sequence-classification reward model,
// through hugot's pure-Go backend or ONNX Runtime.
package reward
