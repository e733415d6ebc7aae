package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
)

// An upload whose body ends before its Content-Length (or before its last chunk) is the client's failure: a
// 400 in OpenAI's error shape naming the file, not a 500, and nothing is stored. The body is cut short on a
// raw connection, as a client that dies or is killed mid-upload leaves it; the service is the real one.
func TestUploadCutShortIs400(t *testing.T) {
	env := jobstest.New(t, jobs.Config{})
	h, err := New(Config{Service: env.Service, Token: testToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	row := `{"instruction":"x"}` + "\n"
	head := "POST /admin/v1/files?purpose=results&filename=t.jsonl HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testToken + "\r\n"
	for name, raw := range map[string]string{
		"content-length": head + "Content-Length: 1000\r\n\r\n" + row,
		"chunked":        head + "Transfer-Encoding: chunked\r\n\r\n14\r\n" + row,
		"multipart": head + "Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 1000\r\n\r\n" +
			"--XX\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nresults\r\n" +
			"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.jsonl\"\r\n\r\n" + row,
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: no response: %v", name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		wantError(t, name, resp.StatusCode, b, http.StatusBadRequest, "file")
		var er struct {
			Error struct{ Type string }
		}
		if json.Unmarshal(b, &er); er.Error.Type == "server_error" {
			t.Errorf("%s: a cut-short upload is a server error: %s", name, b)
		}
	}
	files, err := env.Service.Files(context.Background(), "")
	if err != nil || len(files) != 0 {
		t.Errorf("cut-short uploads stored %d files (%v)", len(files), err)
	}
}
