package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunDispatch(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"no-such-command"}, &out, &errOut); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `unknown command "no-such-command"`) {
		t.Errorf("unknown command: stderr %q does not name it", errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"bench", "-h"}, &out, &errOut); code != 0 {
		t.Errorf("bench -h: exit %d, want 0", code)
	}
	if strings.Contains(errOut.String(), "help requested") {
		t.Errorf("bench -h reported help as an error: %q", errOut.String())
	}
	if code := run(context.Background(), nil, &out, &errOut); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
}
