// Package engine runs best-of-N generation: it prefills a prompt once, forks its KV cache N ways, decodes the N
// candidates together in one batch per step (continuous batching across requests), then asks a Scorer to rank
// them. It declares the interfaces it consumes (Generator, Tokenizer, Scorer).
//
// # One request
//
// Generate tokenizes the prompt (in the caller's goroutine), validates it (ContextLengthError, ErrBadRequest,
// ErrTooLarge) and queues it. Once admitted, the prompt is evaluated once into one KV sequence; from the
// prompt's last logits the sequence is forked N-1 times (the forks share the prompt's cache blocks, copied on
// write) and candidate i samples its first token with its own sampler seeded Sampling.Seed+i. From then on every
// live candidate contributes one token to each step's batch. A candidate ends on an end-of-generation token, a
// stop string (found across token boundaries; neither it nor anything after it is emitted), MaxTokens or the
// context length; its KV sequence is freed at once. A candidate's text is exactly what decoding prompt +
// candidate adds after the prompt (its leading space included). With Rerank, the candidates' texts, without the
// white space they start with, go to one Scorer.Score call (the request's Scorer if set, else the engine's;
// bounded by Config.ScoreTimeout, outside the scheduler) and are sorted best first (stable: ties keep sampling order). A failing or late scorer does not
// fail the request: the result is Degraded, with all candidates in sampling order. Rank is that ranking, exported
// for generators that do not decode themselves (package remote), so their requests rank the same way.
//
// # The scheduler
//
// One goroutine owns the model and the KV cache. Each step it drops cancelled requests, admits queued ones,
// builds one batch and runs one Forward:
//
//   - Prefill is chunked and mixed into the decode batch: each step carries every live candidate's pending
//     token plus up to Config.PrefillChunk prompt tokens of the requests being prefilled (oldest first). A long
//     prompt therefore never stalls running requests for more than one chunk's worth of compute per step, and
//     the weights are read once per step for prefill and decode together.
//   - Admission is FIFO and conservative: a request is admitted only when its N sequences fit
//     Config.MaxActiveSeqs and its worst-case KV blocks (the prompt once, plus N candidates of MaxTokens) fit
//     beside the worst cases of the running requests. The cache can therefore never fill up mid-request and
//     nothing is ever preempted; the price is some unused memory while candidates are shorter than their
//     limit. A request that can never fit is refused with ErrTooLarge; one that does not fit now waits.
//   - The admission queue is bounded (Config.MaxQueue): beyond it Generate fails at once with ErrQueueFull.
//   - Cancellation: when a request's context is done, its sequences leave the batch at the next step and their
//     blocks are freed before Generate returns the context's error (wrapped); there is no partial result.
//   - Close stops admission, fails queued and running requests with ErrClosed and waits for the scheduler.
//
// # Streaming
//
// Request.OnEvent receives text as it is produced for N == 1, and for N > 1 with StreamCandidates (per
// candidate, Event.Candidate set); otherwise, for N > 1, the answer is sent as one event after ranking. Text
// is UTF-8 safe (the tokenizer's streaming decoder) and never contains part of a stop string.
//
// Determinism: candidate i of a best-of-N request draws the same tokens as a single request seeded Seed+i, up to
// float rounding (batched matrix products round differently from single rows, about 1e-5 on logits, which can
// very rarely flip a sampled token).
package engine
