package chat

import (
	"errors"
	"fmt"
	"strings"
)

// Message is one turn of a conversation. Role is "system", "user" or "assistant".
type Message struct {
	Role    string
	Content string
}

// Template renders a conversation into prompt text. The output ends with the assistant's generation prompt,
// so the model's continuation is the assistant's answer. Special tokens appear as text (e.g. "<s>",
// "<|im_start|>"): render with RenderParts to tell them from the same text typed in a message, and add a BOS
// token only if the text does not already start with one (see AddBOS).
type Template interface {
	// Name identifies the template ("alpaca", "llama2", "vicuna", "chatml", or "gguf" for a Jinja template).
	Name() string
	// Render formats msgs; it fails on a conversation the template cannot express.
	Render(msgs []Message) (string, error)
}

// Roles.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// ErrUnknownTemplate is returned (wrapped) by Lookup for a name that is not a built-in template.
var ErrUnknownTemplate = errors.New("chat: unknown template")

// ErrConversation is returned (wrapped) by Render for a conversation the template cannot express.
var ErrConversation = errors.New("chat: invalid conversation")

// Names returns the names of the built-in templates, sorted.
func Names() []string { return []string{"alpaca", "chatml", "llama2", "story", "vicuna"} }

// Lookup returns the built-in template with the given name.
func Lookup(name string) (Template, error) {
	switch name {
	case "alpaca":
		return alpaca{}, nil
	case "llama2":
		return llama2{}, nil
	case "vicuna":
		return vicuna{}, nil
	case "chatml":
		return chatml{}, nil
	case "story":
		return story{}, nil
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownTemplate, name, strings.Join(Names(), ", "))
}

// AddBOS reports whether the BOS token should be added when encoding rendered text: when the tokenizer
// adds one by default and the template did not already put bosToken at the start.
func AddBOS(rendered, bosToken string, tokenizerDefault bool) bool {
	if !tokenizerDefault {
		return false
	}
	return bosToken == "" || !strings.HasPrefix(rendered, bosToken)
}

func checkRoles(name string, msgs []Message) error {
	if len(msgs) == 0 {
		return fmt.Errorf("%w: %s: no messages", ErrConversation, name)
	}
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem, RoleUser, RoleAssistant:
		default:
			return fmt.Errorf("%w: %s: message %d has role %q (want system, user or assistant)", ErrConversation, name, i, m.Role)
		}
	}
	if msgs[len(msgs)-1].Role != RoleUser {
		return fmt.Errorf("%w: %s: the last message must be from the user, not %q", ErrConversation, name, msgs[len(msgs)-1].Role)
	}
	return nil
}

// The Alpaca prompt of the paper's Algorithm 1, as in Stanford Alpaca's train.py PROMPT_DICT.
const (
	alpacaPreambleInput = "Below is an instruction that describes a task, paired with an input that provides further " +
		"context. Write a response that appropriately completes the request.\n\n"
	alpacaPreambleNoInput = "Below is an instruction that describes a task. Write a response that appropriately " +
		"completes the request.\n\n"
)

// alpaca renders the paper's Alpaca prompt (Algorithm 1, Stanford Alpaca's PROMPT_DICT):
//
//	with an input:    preamble + "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
//	without an input: preamble + "### Instruction:\n{instruction}\n\n### Response:"
//
// Mapping of a conversation:
//   - The final user turn is the instruction. If the conversation ends with two consecutive user
//     messages, the first is the instruction and the second its input (the paper's {instruction, input}
//     pair), and the with-input preamble is used. An empty input counts as no input, as in train.py.
//   - System messages (joined by a blank line) replace the preamble, which is the system prompt the model was
//     trained with: "{system}\n\n### Instruction:...", as Ollama's Modelfiles for Alpaca-format models render
//     their SYSTEM. Without one (or with only empty ones) the paper's preamble is used.
//   - Earlier user/assistant turns are kept, after the preamble, as
//     "### Instruction:\n{user}\n\n### Response:\n{assistant}\n\n" blocks (consecutive user turns are
//     joined by a blank line), so a follow-up question sees the exchange before it.
type alpaca struct{}

func (alpaca) Name() string { return "alpaca" }

func (alpaca) Render(msgs []Message) (string, error) {
	if err := checkRoles("alpaca", msgs); err != nil {
		return "", err
	}
	var turns []Message // system messages go to the preamble
	var systems []string
	for _, m := range msgs {
		switch {
		case m.Role != RoleSystem:
			turns = append(turns, m)
		case m.Content != "":
			systems = append(systems, m.Content)
		}
	}
	n := len(turns)
	instruction, input := turns[n-1].Content, ""
	history := turns[:n-1]
	if n >= 2 && turns[n-2].Role == RoleUser {
		instruction, input = turns[n-2].Content, turns[n-1].Content
		history = turns[:n-2]
	}
	var b strings.Builder
	switch {
	case len(systems) > 0:
		b.WriteString(strings.Join(systems, "\n\n"))
		b.WriteString("\n\n")
	case input != "":
		b.WriteString(alpacaPreambleInput)
	default:
		b.WriteString(alpacaPreambleNoInput)
	}
	pendingUser := false
	for _, m := range history {
		switch m.Role {
		case RoleUser:
			if pendingUser {
				b.WriteString("\n\n")
			} else {
				b.WriteString("### Instruction:\n")
			}
			b.WriteString(m.Content)
			pendingUser = true
		case RoleAssistant:
			if pendingUser {
				b.WriteString("\n\n")
			}
			b.WriteString("### Response:\n")
			b.WriteString(m.Content)
			b.WriteString("\n\n")
			pendingUser = false
		}
	}
	if pendingUser {
		b.WriteString("\n\n")
	}
	b.WriteString("### Instruction:\n")
	b.WriteString(instruction)
	if input != "" {
		b.WriteString("\n\n### Input:\n")
		b.WriteString(input)
	}
	b.WriteString("\n\n### Response:")
	return b.String(), nil
}

// llama2 renders Meta's Llama 2 chat format (llama/generation.py chat_completion, and the
// tokenizer_config.json chat_template of Llama-2-*-chat-hf): an optional leading system message is
// wrapped in <<SYS>> tags and prepended to the first user message; each exchange is
// "<s>[INST] {user} [/INST] {assistant} </s>", with contents stripped of surrounding white space, and the
// prompt ends with "<s>[INST] {user} [/INST]". Roles after the system message must alternate user,
// assistant, ... as Meta's code asserts.
type llama2 struct{}

func (llama2) Name() string { return "llama2" }

func (llama2) Render(msgs []Message) (string, error) {
	if err := checkRoles("llama2", msgs); err != nil {
		return "", err
	}
	system, hasSystem := "", false
	if msgs[0].Role == RoleSystem {
		system, hasSystem = msgs[0].Content, true
		msgs = msgs[1:]
	}
	var b strings.Builder
	for i, m := range msgs {
		want := RoleUser
		if i%2 == 1 {
			want = RoleAssistant
		}
		if m.Role != want {
			return "", fmt.Errorf("%w: llama2: roles must alternate user/assistant/user/... after an optional system message (message %d is %q)", ErrConversation, i, m.Role)
		}
		content := m.Content
		if i == 0 && hasSystem {
			content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content
		}
		if m.Role == RoleUser {
			b.WriteString("<s>[INST] ")
			b.WriteString(strings.TrimSpace(content))
			b.WriteString(" [/INST]")
		} else {
			b.WriteString(" ")
			b.WriteString(strings.TrimSpace(content))
			b.WriteString(" </s>")
		}
	}
	return b.String(), nil
}

// vicunaSystem is FastChat's default system prompt of the vicuna_v1.1 conversation template.
const vicunaSystem = "A chat between a curious user and an artificial intelligence assistant. " +
	"The assistant gives helpful, detailed, and polite answers to the user's questions."

// vicuna renders FastChat's vicuna_v1.1 template (separator style ADD_COLON_TWO, sep " ", sep2 "</s>"):
// "{system} USER: {user} ASSISTANT: {assistant}</s>USER: {user} ASSISTANT:". The system prompt is the
// conversation's system messages (joined by a blank line) or FastChat's default one.
type vicuna struct{}

func (vicuna) Name() string { return "vicuna" }

func (vicuna) Render(msgs []Message) (string, error) {
	if err := checkRoles("vicuna", msgs); err != nil {
		return "", err
	}
	var systems []string
	for _, m := range msgs {
		if m.Role == RoleSystem {
			systems = append(systems, m.Content)
		}
	}
	system := vicunaSystem
	if len(systems) > 0 {
		system = strings.Join(systems, "\n\n")
	}
	var b strings.Builder
	b.WriteString(system)
	b.WriteString(" ")
	for _, m := range msgs {
		switch m.Role {
		case RoleUser:
			b.WriteString("USER: ")
			b.WriteString(m.Content)
			b.WriteString(" ")
		case RoleAssistant:
			b.WriteString("ASSISTANT: ")
			b.WriteString(m.Content)
			b.WriteString("</s>")
		}
	}
	b.WriteString("ASSISTANT:")
	return b.String(), nil
}

// chatml renders ChatML: "<|im_start|>{role}\n{content}<|im_end|>\n" per message, then
// "<|im_start|>assistant\n". No default system message is added.
type chatml struct{}

func (chatml) Name() string { return "chatml" }

func (chatml) Render(msgs []Message) (string, error) {
	if err := checkRoles("chatml", msgs); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("<|im_start|>")
		b.WriteString(m.Role)
		b.WriteString("\n")
		b.WriteString(m.Content)
		b.WriteString("<|im_end|>\n")
	}
	b.WriteString("<|im_start|>assistant\n")
	return b.String(), nil
}
