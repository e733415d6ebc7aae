package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// runHealth is `bestofn health`: exit 0 when GET URL answers 200 within the timeout. It is the image's
// HEALTHCHECK (the image has no curl).
func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("BESTOFN_HEALTH_URL")
	if def == "" {
		def = "http://127.0.0.1:8080/readyz"
	}
	u := fs.String("url", def, "URL to check (default: $BESTOFN_HEALTH_URL, else http://127.0.0.1:8080/readyz)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	quiet := fs.Bool("q", false, "print nothing on success")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", *u, resp.Status, body)
	}
	if !*quiet {
		fmt.Fprintf(stdout, "%s: %s", *u, body)
	}
	return nil
}
