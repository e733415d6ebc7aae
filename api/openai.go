package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Rerank modes of the "rerank" extension field.
const (
	RerankReward = "reward" // rank candidates by the reward model
	RerankNone   = "none"   // keep sampling order
)

// Object names of OpenAI responses.
const (
	ObjectChatCompletion      = "chat.completion"
	ObjectChatCompletionChunk = "chat.completion.chunk"
	ObjectTextCompletion      = "text_completion"
	ObjectModel               = "model"
	ObjectList                = "list"
)

// GenerationParams are the fields that chat and legacy completion requests share. Pointer fields are
// optional: nil means the server's default.
type GenerationParams struct {
	// Model names a served model or an A/B experiment (see GET /v1/models).
	Model string `json:"model"`
	// Temperature in [0, 2]; 0 is greedy. nil means 1.
	Temperature *float64 `json:"temperature,omitempty"`
	// TopP in (0, 1]; nil means 1 (off).
	TopP *float64 `json:"top_p,omitempty"`
	// N is the number of choices to return; nil means 1.
	N *int `json:"n,omitempty"`
	// MaxTokens bounds each choice's length in tokens; nil means the server's limit, shrunk to what fits.
	MaxTokens *int `json:"max_tokens,omitempty"`
	// Stop holds up to 16 strings that end a choice (a string or an array of strings on the wire).
	Stop StopList `json:"stop,omitempty"`
	// Seed makes sampling reproducible; candidate i uses Seed+i. nil means a server-chosen seed.
	Seed *int64 `json:"seed,omitempty"`
	// Stream asks for server-sent events, ended by "data: [DONE]".
	Stream bool `json:"stream,omitempty"`
	// StreamOptions.IncludeUsage adds a final chunk with usage and no choices.
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`
	// PresencePenalty and FrequencyPenalty in [-2, 2].
	PresencePenalty  *float64 `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64 `json:"frequency_penalty,omitempty"`
	// LogitBias maps token ids (as decimal strings) to a bias in [-100, 100].
	LogitBias map[string]float64 `json:"logit_bias,omitempty"`
	// User identifies the end user; bestofn uses it as the sticky key of A/B experiments.
	User string `json:"user,omitempty"`

	// TopK, MinP and RepeatPenalty are llama.cpp-style sampling extensions; nil means off.
	TopK          *int     `json:"top_k,omitempty"`
	MinP          *float64 `json:"min_p,omitempty"`
	RepeatPenalty *float64 `json:"repeat_penalty,omitempty"`

	// BestOf is the number of candidates to sample; nil means the model's default. OpenAI defines it on
	// /v1/completions only; bestofn takes it on both endpoints.
	BestOf *int `json:"best_of,omitempty"`
	// Rerank (extension) is RerankReward or RerankNone; "" means the model's default.
	Rerank string `json:"rerank,omitempty"`
	// ReturnCandidates (extension) returns all candidates with scores and ranks.
	ReturnCandidates bool `json:"return_candidates,omitempty"`
	// ResponseFormat {"type":"json_object"} constrains every candidate to one JSON object (JSON mode, by
	// constrained sampling); "text" (or absent) is free text; "json_schema" is not supported (400).
	ResponseFormat *ResponseFormat `json:"response_format,omitempty"`
}

// ResponseFormat is the response_format of a request.
type ResponseFormat struct {
	Type       string          `json:"type"`
	JSONSchema json.RawMessage `json:"json_schema,omitempty"`
}

// Response format types.
const (
	FormatText       = "text"
	FormatJSONObject = "json_object"
	FormatJSONSchema = "json_schema"
)

// ChatCompletionRequest is the body of POST /v1/chat/completions.
type ChatCompletionRequest struct {
	GenerationParams
	// Messages is the conversation; it must not be empty.
	Messages []ChatMessage `json:"messages"`
	// MaxCompletionTokens is the newer name of MaxTokens and wins when both are set.
	MaxCompletionTokens *int `json:"max_completion_tokens,omitempty"`
	// Logprobs asks for the log-probability of each output token, TopLogprobs (0..20) for alternatives;
	// TopLogprobs > 0 needs Logprobs.
	Logprobs    bool `json:"logprobs,omitempty"`
	TopLogprobs *int `json:"top_logprobs,omitempty"`

	// Fields bestofn does not support and refuses (400 naming the field) rather than ignore, because they
	// change what the answer is: tool and function calling, audio, web search. tool_choice and function_call
	// "none" (and "auto" without tools) are accepted, since they ask for plain text.
	Tools            json.RawMessage `json:"tools,omitempty"`
	ToolChoice       json.RawMessage `json:"tool_choice,omitempty"`
	Functions        json.RawMessage `json:"functions,omitempty"`
	FunctionCall     json.RawMessage `json:"function_call,omitempty"`
	Audio            json.RawMessage `json:"audio,omitempty"`
	Modalities       []string        `json:"modalities,omitempty"`
	WebSearchOptions json.RawMessage `json:"web_search_options,omitempty"`
}

// StreamOptions are the options of a streamed response.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage,omitempty"`
}

// ChatMessage is one message of a conversation.
type ChatMessage struct {
	// Role is "system", "user" or "assistant" (also "developer", treated as "system").
	Role string `json:"role"`
	// Content is the message text. On input it may also be an array of content parts of type "text".
	Content Content `json:"content"`
	// Name is an optional participant name; it is accepted and ignored.
	Name string `json:"name,omitempty"`
	// ToolCalls of an assistant message are refused on input (tool calling is not supported).
	ToolCalls json.RawMessage `json:"tool_calls,omitempty"`
}

// Content is a message's text. It unmarshals from a JSON string, null, or an array of {"type":"text","text":...}
// parts (concatenated); it marshals as a string.
type Content string

// UnmarshalJSON implements json.Unmarshaler.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Content(s)
		return nil
	case len(b) > 0 && b[0] == '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		var buf bytes.Buffer
		for _, p := range parts {
			if p.Type != "text" {
				return fmt.Errorf("api: content part of type %q is not supported (only \"text\")", p.Type)
			}
			buf.WriteString(p.Text)
		}
		*c = Content(buf.String())
		return nil
	}
	return errors.New("api: message content must be a string or an array of text parts")
}

// StopList is a list of stop strings. It unmarshals from a JSON string, null or an array of strings.
type StopList []string

// UnmarshalJSON implements json.Unmarshaler.
func (s *StopList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = StopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("api: stop must be a string or an array of strings")
	}
	*s = many
	return nil
}

// Prompt is the prompt of a completion request. It unmarshals from a JSON string or an array of strings (each
// one a separate prompt).
type Prompt []string

// UnmarshalJSON implements json.Unmarshaler.
func (p *Prompt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*p = Prompt{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("api: prompt must be a string or an array of strings")
	}
	*p = many
	return nil
}

// ChatCompletionResponse is the body of a non-streamed chat completion.
type ChatCompletionResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"` // ObjectChatCompletion
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []ChatChoice `json:"choices"`
	Usage   Usage        `json:"usage"`
	// SystemFingerprint identifies the server build.
	SystemFingerprint string `json:"system_fingerprint,omitempty"`
	Extensions
}

// Extensions are the bestofn fields of a response.
type Extensions struct {
	// Variant is the A/B variant that served the request.
	Variant string `json:"variant,omitempty"`
	// Candidates lists every sampled candidate when the request set return_candidates.
	Candidates []Candidate `json:"candidates,omitempty"`
	// Degraded is set when reranking was asked for but failed; DegradedReason says why.
	Degraded       bool   `json:"degraded,omitempty"`
	DegradedReason string `json:"degraded_reason,omitempty"`
}

// Candidate is one sampled candidate of a best-of-N request.
type Candidate struct {
	// Index is the candidate's sampling index (it was sampled with seed+Index).
	Index int `json:"index"`
	// Rank is 1 for the best candidate when the candidates were ranked (by the reward model, or by mean
	// log-probability for best_of > n without reranking); otherwise Index+1.
	Rank int `json:"rank"`
	// Score is the reward model's score; absent when the candidate was not scored.
	Score *float64 `json:"score,omitempty"`
	// MeanLogprob is the mean log-probability of the candidate's tokens (absent for an empty candidate).
	MeanLogprob  *float64 `json:"mean_logprob,omitempty"`
	Text         string   `json:"text"`
	FinishReason string   `json:"finish_reason"`
	// Tokens is the candidate's length in tokens.
	Tokens int `json:"tokens"`
}

// ChatChoice is one choice of a chat completion.
type ChatChoice struct {
	Index        int             `json:"index"`
	Message      ChatMessage     `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     *ChoiceLogprobs `json:"logprobs"`
}

// ChoiceLogprobs are the log-probabilities of a choice's tokens.
type ChoiceLogprobs struct {
	Content []TokenLogprob `json:"content"`
}

// TokenLogprob is one output token with its log-probability and, when asked for, the top alternatives.
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// TopLogprob is an alternative token at one position.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// Usage counts tokens. CompletionTokens counts every sampled candidate, not only the returned choices.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ChatCompletionChunk is one server-sent event of a streamed chat completion.
type ChatCompletionChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"` // ObjectChatCompletionChunk
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint,omitempty"`
	Choices           []ChunkChoice `json:"choices"`
	// Usage is set only on the final chunk when stream_options.include_usage is true.
	Usage *Usage `json:"usage,omitempty"`
	Extensions
}

// ChunkChoice is a choice's increment in a chunk.
type ChunkChoice struct {
	Index        int             `json:"index"`
	Delta        ChatDelta       `json:"delta"`
	FinishReason *string         `json:"finish_reason"`
	Logprobs     *ChoiceLogprobs `json:"logprobs,omitempty"`
}

// ChatDelta is the new part of a streamed message.
type ChatDelta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

// CompletionRequest is the body of POST /v1/completions (legacy text completion; the prompt is not templated).
type CompletionRequest struct {
	GenerationParams
	// Prompt must hold exactly one prompt.
	Prompt Prompt `json:"prompt"`
	// Logprobs (0..5) asks for that many alternatives per token; nil means none.
	Logprobs *int `json:"logprobs,omitempty"`
	// Echo prepends the prompt to each choice's text.
	Echo bool `json:"echo,omitempty"`
	// ParseSpecial (extension) tokenizes control-token text in the prompt ("</s>", "<|im_start|>") as those
	// tokens; by default it is plain text.
	ParseSpecial bool `json:"parse_special,omitempty"`
	// Suffix (text after the insertion, for fill-in-the-middle) is not supported: a non-empty one is a 400.
	Suffix string `json:"suffix,omitempty"`
}

// CompletionResponse is the body of a completion, and of each streamed completion event.
type CompletionResponse struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"` // ObjectTextCompletion
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint,omitempty"`
	Choices           []CompletionChoice `json:"choices"`
	Usage             *Usage             `json:"usage,omitempty"`
	Extensions
}

// CompletionChoice is one choice of a text completion.
type CompletionChoice struct {
	Index        int                 `json:"index"`
	Text         string              `json:"text"`
	FinishReason *string             `json:"finish_reason"`
	Logprobs     *CompletionLogprobs `json:"logprobs"`
}

// CompletionLogprobs are the legacy completion log-probabilities.
type CompletionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// Model describes one model of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // ObjectModel
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Object string  `json:"object"` // ObjectList
	Data   []Model `json:"data"`
}

// ErrorResponse is the body of every error on /v1.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Error describes what went wrong. Param names the offending request field, Code is a stable machine-readable
// code (e.g. "model_not_found", "context_length_exceeded", "rate_limit_exceeded").
type Error struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// Error types.
const (
	ErrorTypeInvalidRequest = "invalid_request_error"
	ErrorTypeNotFound       = "not_found_error"
	ErrorTypeRateLimit      = "rate_limit_error"
	ErrorTypeServer         = "server_error"
	ErrorTypeUnavailable    = "service_unavailable_error"
	ErrorTypeTimeout        = "timeout_error"
)
