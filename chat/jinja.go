package chat

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

// MaxJinjaSource is the longest chat template source Jinja accepts, in bytes.
const MaxJinjaSource = 1 << 20

// ErrTemplateException is returned (wrapped) by a Jinja template's Render when the template calls
// raise_exception (e.g. "Conversation roles must alternate user/assistant/user/assistant/...").
var ErrTemplateException = errors.New("chat: template raised an exception")

// jinjaTemplate is a parsed GGUF / Hugging Face chat template.
type jinjaTemplate struct {
	tmpl *exec.Template
	bos  string
	eos  string
}

// Jinja parses src, a Hugging Face / GGUF tokenizer.chat_template, with gonja. Render then runs it like
// transformers' apply_chat_template: Jinja2 with trim_blocks and lstrip_blocks, variables messages (a
// list of {role, content}), add_generation_prompt = true, bos_token, eos_token, and a raise_exception(msg)
// function that fails the rendering with ErrTemplateException, and strftime_now(format) (used by Llama 3.2
// templates for the date). Templates cannot include or import other files.
func Jinja(src, bosToken, eosToken string) (Template, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("chat: empty jinja template")
	}
	if len(src) > MaxJinjaSource {
		return nil, fmt.Errorf("chat: jinja template of %d bytes (at most %d)", len(src), MaxJinjaSource)
	}
	const root = "/chat_template"
	loader, err := loaders.NewMemoryLoader(map[string]string{root: src})
	if err != nil {
		return nil, fmt.Errorf("chat: jinja template: %w", err)
	}
	cfg := config.New()
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	env := &exec.Environment{
		Context:           exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables),
		Filters:           builtins.Filters,
		Tests:             builtins.Tests,
		ControlStructures: builtins.ControlStructures,
		Methods:           builtins.Methods,
	}
	t, err := parseJinja(root, cfg, loader, env)
	if err != nil {
		return nil, err
	}
	return &jinjaTemplate{tmpl: t, bos: bosToken, eos: eosToken}, nil
}

// parseJinja parses a template, turning a panic inside the third-party parser into an error.
func parseJinja(root string, cfg *config.Config, loader loaders.Loader, env *exec.Environment) (t *exec.Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("chat: jinja template does not parse: %v", r)
		}
	}()
	t, err = exec.NewTemplate(root, cfg, loader, env)
	if err != nil {
		return nil, fmt.Errorf("chat: jinja template does not parse: %w", err)
	}
	return t, nil
}

func (*jinjaTemplate) Name() string { return "gguf" }

// Render runs the template on msgs with add_generation_prompt = true.
func (j *jinjaTemplate) Render(msgs []Message) (out string, err error) {
	if len(msgs) == 0 {
		return "", fmt.Errorf("%w: gguf: no messages", ErrConversation)
	}
	list := make(messageList, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	var raised error
	ctx := exec.NewContext(map[string]any{
		"messages":              list,
		"add_generation_prompt": true,
		"bos_token":             j.bos,
		"eos_token":             j.eos,
		"raise_exception": func(msg string) (string, error) {
			raised = fmt.Errorf("%w: %s", ErrTemplateException, msg)
			return "", raised
		},
		"strftime_now": func(format string) string { return strftime(time.Now(), format) },
	})
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("chat: jinja template failed: %v", r)
		}
	}()
	out, err = j.tmpl.ExecuteToString(ctx)
	if raised != nil {
		return "", raised
	}
	if err != nil {
		return "", fmt.Errorf("chat: jinja template failed: %w", err)
	}
	return out, nil
}

// Select returns the template to use for a model: its own GGUF tokenizer.chat_template when there is one
// and it parses and renders a probe conversation, otherwise the built-in template named fallback. An
// unknown fallback name is an error even when the GGUF template is usable, so a misconfiguration shows at
// startup. The second result says why the fallback was used ("" when the GGUF template is used).
func Select(ggufTemplate, fallback, bosToken, eosToken string) (Template, string, error) {
	fb, err := Lookup(fallback)
	if err != nil {
		return nil, "", err
	}
	if strings.TrimSpace(ggufTemplate) == "" {
		return fb, "the model has no chat template", nil
	}
	t, err := Jinja(ggufTemplate, bosToken, eosToken)
	if err != nil {
		return fb, err.Error(), nil
	}
	probe := []Message{{Role: RoleUser, Content: "Hello"}}
	if _, err := t.Render(probe); err != nil {
		return fb, err.Error(), nil
	}
	return t, "", nil
}

// messageList is the messages variable. Its GetItem works around gonja v2.9.1 rejecting the index -len
// (messages[-1] on a one-message conversation, which Qwen's template evaluates).
type messageList []map[string]any

// GetItem implements exec.ItemGetter with Python indexing (negative indexes count from the end).
func (l messageList) GetItem(key any) (*exec.Value, bool) {
	i, ok := key.(int)
	if !ok {
		return exec.AsValue(nil), false
	}
	if i < 0 {
		i += len(l)
	}
	if i < 0 || i >= len(l) {
		return exec.AsValue(nil), false
	}
	return exec.AsValue(l[i]), true
}

// strftime formats t with the C/Python strftime directives chat templates use (%d %m %Y %y %b %B %a %A %H
// %I %M %S %p %j %%); other directives are copied unchanged.
func strftime(t time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		switch format[i] {
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'Y':
			fmt.Fprintf(&b, "%d", t.Year())
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'b':
			b.WriteString(t.Month().String()[:3])
		case 'B':
			b.WriteString(t.Month().String())
		case 'a':
			b.WriteString(t.Weekday().String()[:3])
		case 'A':
			b.WriteString(t.Weekday().String())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'I':
			fmt.Fprintf(&b, "%02d", (t.Hour()+11)%12+1)
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'p':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}
