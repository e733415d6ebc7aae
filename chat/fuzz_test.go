package chat

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzJinja checks that no template source, however malformed, crashes Jinja or Render: they return errors.
func FuzzJinja(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "templates", "*.jinja"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("{{ messages[-1]['content'] | trim }}{% for m in messages %}{{ loop.index }}{% endfor %}")
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := Jinja(src, "<s>", "</s>")
		if err != nil {
			return
		}
		_, _ = tmpl.Render([]Message{{"system", "s"}, {"user", "u"}, {"assistant", "a"}, {"user", "v"}})
	})
}
