package teachertest

import (
	"net"
	"net/http"
	"testing"
)

// newLoopbackServer serves h on a free 127.0.0.1 port until the test ends and returns its root URL.
func newLoopbackServer(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
