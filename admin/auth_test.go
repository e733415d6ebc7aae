package admin

import (
	"net/http"
	"strings"
	"testing"
)

// The authentication scheme is case-insensitive (RFC 9110 section 11.1): "bearer" and "BEARER" carry the
// token as well as "Bearer" does, as clients and proxies that lower-case header values send it; anything else
// still needs the exact token.
func TestAuthSchemeIsCaseInsensitive(t *testing.T) {
	e := newTestEnv(t, testToken, 1<<20)
	status := func(hdr string) int {
		req, _ := http.NewRequest("GET", e.srv.URL+"/admin/v1/jobs", nil)
		req.Header.Set("Authorization", hdr)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, hdr := range []string{"Bearer " + testToken, "bearer " + testToken, "BEARER " + testToken, "Bearer  " + testToken} {
		if code := status(hdr); code != 200 {
			t.Errorf("Authorization %q: status %d, want 200", hdr, code)
		}
	}
	for _, hdr := range []string{"bearer", "bearer" + testToken, "Bearer " + testToken + "x", "bearer x" + testToken, testToken} {
		if code := status(hdr); code != 401 {
			t.Errorf("Authorization %q: status %d, want 401", hdr, code)
		}
	}
}

// A JSON body that is not an object is a 400 in the API's words, not Go's ("type admin.SubmitRequest").
func TestBodyNotAnObject(t *testing.T) {
	e := newTestEnv(t, testToken, 1<<20)
	for _, path := range []string{"/admin/v1/jobs", "/admin/v1/models", "/admin/v1/models/m/activate"} {
		for _, body := range []string{`[]`, `"x"`, `5`} {
			code, b := e.call(t, "POST", path, "application/json", strings.NewReader(body), testToken)
			wantError(t, path+" "+body, code, b, 400, "-")
			if !strings.Contains(string(b), "JSON object") || strings.Contains(string(b), "admin.") {
				t.Errorf("%s %s: %s", path, body, b)
			}
		}
	}
}
