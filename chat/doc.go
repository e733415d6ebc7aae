// Package chat renders a conversation into the prompt text a model was trained on: the Alpaca template of the
// paper's Algorithm 1, llama-2 chat, Vicuna, ChatML, and a GGUF file's own Jinja tokenizer.chat_template; and
// "story", which renders a request for a story as the story's first sentence, for base story models that know
// no instruction format (the default models' teacher: see story.go).
//
// Lookup returns a built-in template by name; Jinja parses a GGUF / Hugging Face template (rendered with
// gonja the way transformers' apply_chat_template runs Jinja2); Select picks the model's own template when
// it works and a named built-in otherwise.
//
// Rendered prompts carry special tokens as text ("<s>", "<|im_start|>", ...): encode the template's text with
// special-token parsing on and the messages' text with it off, which RenderParts makes possible for any
// template (its parts feed tokenizer.EncodeSegments), and add BOS only when the text does not already start
// with it (AddBOS).
//
// The expected prompts in testdata/reference.json come from scripts/chat_reference.py (Python jinja2 and
// the published template definitions), not from this package.
package chat
