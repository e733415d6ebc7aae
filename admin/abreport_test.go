package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/jobs"
)

// reporterFunc is an ABReporter made of a function.
type reporterFunc func(ctx context.Context, q url.Values) (any, error)

func (f reporterFunc) ABReport(ctx context.Context, q url.Values) (any, error) { return f(ctx, q) }

// TestABReportRoute: the query reaches the reporter as sent, its report is the JSON body, a ParamError is a
// 400 naming the parameter, another error a 500 that hides its cause, no reporter a 501, no token a 401.
// (cmd/bestofn's TestProcessABReportRoute drives the real reporter on a real server.)
func TestABReportRoute(t *testing.T) {
	var got url.Values
	rep := reporterFunc(func(ctx context.Context, q url.Values) (any, error) {
		got = q
		switch q.Get("judge") {
		case "vibes":
			return nil, &jobs.ParamError{Field: "judge", Message: `must be "teacher" or "scorer"`}
		case "boom":
			return nil, errors.New("secret cause")
		}
		return map[string]any{"object": "ab_report", "version": 1}, nil
	})
	h, err := New(Config{Service: newFakeService(1 << 20), ABReports: rep, Token: testToken,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e := &env{srv: srv, c: NewClient(srv.URL, testToken, srv.Client())}

	var out map[string]any
	if err := e.c.ABReport(context.Background(), url.Values{"scorer.kind": {"rules"}, "limit": {"5"}}, &out); err != nil {
		t.Fatal(err)
	}
	if out["object"] != "ab_report" || got.Get("scorer.kind") != "rules" || got.Get("limit") != "5" {
		t.Errorf("report %v, query %v", out, got)
	}
	code, body := e.call(t, http.MethodGet, "/admin/v1/ab/report?judge=vibes", "", nil, testToken)
	wantError(t, "bad judge", code, body, http.StatusBadRequest, "judge")
	code, body = e.call(t, http.MethodGet, "/admin/v1/ab/report?judge=boom", "", nil, testToken)
	wantError(t, "internal", code, body, http.StatusInternalServerError, "-")
	if strings.Contains(string(body), "secret cause") {
		t.Errorf("500 shows its cause: %s", body)
	}
	code, body = e.call(t, http.MethodGet, "/admin/v1/ab/report", "", nil, "")
	wantError(t, "no token", code, body, http.StatusUnauthorized, "-")

	none := newTestEnv(t, testToken, 1<<20)
	code, body = none.call(t, http.MethodGet, "/admin/v1/ab/report", "", nil, testToken)
	wantError(t, "no reporter", code, body, http.StatusNotImplemented, "-")
}
