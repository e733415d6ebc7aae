package server

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/bestofn/bestofn/api"
)

// Request features bestofn does not implement are refused with a 400 naming the field, never ignored, when
// they would change what the answer is; JSON mode is implemented (sampler.Params.JSON).

// given says whether a raw JSON field holds something: not absent, null, "" or an empty array or object.
func given(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", `""`, "[]", "{}":
		return false
	}
	return true
}

// plainChoice says whether a tool_choice or function_call asks for plain text: absent, "none" or "auto" (with
// no tools, auto is none).
func plainChoice(raw json.RawMessage) bool {
	if !given(raw) {
		return true
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && (s == "none" || s == "auto")
}

// checkChatFeatures refuses the chat request fields bestofn does not support.
func checkChatFeatures(req *api.ChatCompletionRequest) error {
	switch {
	case given(req.Tools):
		return unsupported("tools", "tool calling (tools)")
	case !plainChoice(req.ToolChoice):
		return unsupported("tool_choice", "tool calling (tool_choice)")
	case given(req.Functions):
		return unsupported("functions", "function calling (functions)")
	case !plainChoice(req.FunctionCall):
		return unsupported("function_call", "function calling (function_call)")
	case given(req.Audio):
		return unsupported("audio", "audio output")
	case given(req.WebSearchOptions):
		return unsupported("web_search_options", "web search")
	}
	for _, m := range req.Modalities {
		if m != "text" {
			return unsupported("modalities", strconv.Quote(m)+" output")
		}
	}
	for i, m := range req.Messages {
		if given(m.ToolCalls) {
			return unsupported("messages["+strconv.Itoa(i)+"].tool_calls", "tool calling (tool_calls)")
		}
	}
	return nil
}

// jsonMode reads response_format: true for JSON mode, false for text, a 400 for what is not supported.
func jsonMode(rf *api.ResponseFormat) (bool, error) {
	if rf == nil {
		return false, nil
	}
	switch rf.Type {
	case "", api.FormatText:
		return false, nil
	case api.FormatJSONObject:
		return true, nil
	case api.FormatJSONSchema:
		return false, badParam("response_format", "response_format %q is not supported by bestofn; use {\"type\":%q} (JSON mode)",
			rf.Type, api.FormatJSONObject)
	}
	return false, badParam("response_format", "response_format type must be %q or %q, got %q", api.FormatText, api.FormatJSONObject, rf.Type)
}

// ollamaFormat reads Ollama's format: "json" is JSON mode; a JSON schema is not supported.
func ollamaFormat(f json.RawMessage) (bool, error) {
	if !hasFormat(f) {
		return false, nil
	}
	var s string
	if json.Unmarshal(f, &s) == nil && s == "json" {
		return true, nil
	}
	return false, badParam("format", "format with a JSON schema is not supported by bestofn; use format \"json\" (JSON mode)")
}
