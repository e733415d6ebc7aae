package admin

import (
	"context"
	"net/http"
	"net/url"
)

// ABReporter builds the live A/B report of GET /admin/v1/ab/report from the request's query; cmd/bestofn
// implements it over package pipeline (pipeline.ParseABReportQuery and ABReportEnv.Report). A bad query
// parameter is a *jobs.ParamError naming it (400).
type ABReporter interface {
	ABReport(ctx context.Context, query url.Values) (any, error)
}

// abReport judges the A/B log and answers the report at once (JSON; the judging happens during the request,
// so a large log wants `limit`, `since`, or the ab-report job).
func (h *Handler) abReport(w http.ResponseWriter, r *http.Request) error {
	if h.cfg.ABReports == nil {
		return notImplemented("this process has no A/B report (it serves no A/B traffic)")
	}
	rep, err := h.cfg.ABReports.ABReport(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
