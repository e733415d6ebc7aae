package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/bestofn/bestofn/api"
)

// multipartSlack is what a multipart body may hold beyond the file's content (boundaries, headers, fields).
const multipartSlack = 64 << 10

// limitedReader is an io.Reader over an upload that fails with *http.MaxBytesError past limit and remembers it,
// so the answer is 413 however the service wraps the error; it also remembers a body that ended early (the
// client went away mid-upload: a 400, not the service's failure).
type limitedReader struct {
	r       io.Reader
	left    int64
	limit   int64
	tripped bool
	cut     error // the read error of a body cut short
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		var mb *http.MaxBytesError
		if n > 0 || errors.As(err, &mb) {
			l.tripped = true
			return 0, &http.MaxBytesError{Limit: l.limit}
		}
		if err == nil {
			return 0, nil
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		l.tripped = true
	case err != nil && err != io.EOF:
		l.cut = err
	}
	return n, err
}

// uploadFile stores a raw body (purpose and filename in the query) or a multipart form (fields "purpose" and
// "filename", or the query's, and the part "file").
func (h *Handler) uploadFile(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	purpose, filename := q.Get("purpose"), q.Get("filename")
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isForm := mt == "multipart/form-data"
	limit := h.maxBytes
	if isForm {
		limit += multipartSlack
	}
	if r.ContentLength > limit {
		return &http.MaxBytesError{Limit: h.maxBytes}
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)

	var content io.Reader = r.Body
	if isForm {
		mr, err := r.MultipartReader()
		if err != nil {
			return badParam("file", "bad multipart body: %v", err)
		}
		var spooled *os.File
		defer func() {
			if spooled != nil {
				spooled.Close()
				os.Remove(spooled.Name())
			}
		}()
		content = nil
	parts:
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				var mb *http.MaxBytesError
				if errors.As(err, &mb) {
					return &http.MaxBytesError{Limit: h.maxBytes}
				}
				return badParam("file", "bad multipart body: %v", err)
			}
			switch part.FormName() {
			case "purpose", "filename":
				b, err := io.ReadAll(io.LimitReader(part, 1024))
				if err != nil {
					return badParam(part.FormName(), "bad multipart field: %v", err)
				}
				if part.FormName() == "purpose" {
					purpose = string(b)
				} else {
					filename = string(b)
				}
			case "file":
				if filename == "" {
					filename = part.FileName()
				}
				if purpose != "" {
					content = part // stream it: nothing needed comes after
					break parts
				}
				// The purpose may follow the file (openai-go writes the file first): keep the file aside.
				if spooled, err = os.CreateTemp("", "bestofn-upload-*"); err != nil {
					return fmt.Errorf("admin: spool upload: %w", err)
				}
				if _, err := io.Copy(spooled, part); err != nil {
					var mb *http.MaxBytesError
					if errors.As(err, &mb) {
						return &http.MaxBytesError{Limit: h.maxBytes}
					}
					return badParam("file", "reading the upload: %v", err)
				}
				if _, err := spooled.Seek(0, io.SeekStart); err != nil {
					return fmt.Errorf("admin: spool upload: %w", err)
				}
			}
		}
		if content == nil && spooled != nil {
			content = spooled
		}
		if content == nil {
			return badParam("file", "the multipart form has no part named \"file\"")
		}
	}
	if purpose == "" {
		return badParam("purpose", "purpose is required (query parameter or form field)")
	}
	if err := checkFilename(filename); err != nil {
		return err
	}
	lr := &limitedReader{r: content, left: h.maxBytes, limit: h.maxBytes}
	f, err := h.cfg.Service.UploadFile(r.Context(), filename, purpose, lr)
	if lr.tripped {
		return &http.MaxBytesError{Limit: h.maxBytes}
	}
	if err != nil && lr.cut != nil && !errors.Is(err, context.Canceled) {
		return badParam("file", "the upload was cut short (%v); nothing was stored", lr.cut)
	}
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &http.MaxBytesError{Limit: h.maxBytes}
		}
		return err
	}
	writeJSON(w, http.StatusCreated, f)
	return nil
}

// checkFilename refuses names that look like paths or hold control characters: a filename is metadata only,
// and one that a client might join to a directory when it downloads the file is refused rather than cleaned.
func checkFilename(name string) error {
	switch {
	case name == "":
		return badParam("filename", "filename is required (query parameter, form field or the file part's filename)")
	case len(name) > 255:
		return badParam("filename", "filename is longer than 255 bytes")
	case !utf8.ValidString(name):
		return badParam("filename", "filename is not valid UTF-8")
	case name == "." || name == ".." || strings.ContainsAny(name, `/\`):
		return badParam("filename", "filename %q looks like a path; give a plain file name", name)
	}
	for _, c := range name {
		if unicode.IsControl(c) {
			return badParam("filename", "filename holds a control character")
		}
	}
	return nil
}

func (h *Handler) listFiles(w http.ResponseWriter, r *http.Request) error {
	files, err := h.cfg.Service.Files(r.Context(), r.URL.Query().Get("purpose"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(files))
	return nil
}

func (h *Handler) getFile(w http.ResponseWriter, r *http.Request) error {
	f, err := h.cfg.Service.File(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// fileContent streams a file's bytes with its length, name and sha256 (header X-Bestofn-Sha256, and the ETag).
func (h *Handler) fileContent(w http.ResponseWriter, r *http.Request) error {
	rc, f, err := h.cfg.Service.OpenFile(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(f.Bytes, 10))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Filename}))
	w.Header().Set("X-Bestofn-Sha256", f.SHA256)
	w.Header().Set("ETag", `"`+f.SHA256+`"`)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		h.log.Warn("admin: file content cut short", "file", f.ID, "err", err)
	}
	return nil
}

// deleted is OpenAI's answer to a deletion.
type deleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

func (h *Handler) deleteFile(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if err := h.cfg.Service.DeleteFile(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deleted{ID: id, Object: "file", Deleted: true})
	return nil
}

// notImplemented is the answer of routes whose collaborator is missing.
func notImplemented(what string) *apiError {
	return &apiError{Status: http.StatusNotImplemented, Type: api.ErrorTypeServer, Code: "not_implemented", Message: what}
}
