// Package chat renders a conversation into the prompt text a model was trained on: the Alpaca template of the
// paper's Algorithm 1, llama-2 chat, Vicuna, ChatML, and a GGUF file's own Jinja tokenizer.chat_template.
package chat
