package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestContentForms(t *testing.T) {
	cases := []struct {
		in      string
		want    Content
		wantErr bool
	}{
		{`"hi"`, "hi", false},
		{`null`, "", false},
		{`[{"type":"text","text":"a"},{"type":"text","text":"b"}]`, "ab", false},
		{`[{"type":"image_url","image_url":{"url":"x"}}]`, "", true},
		{`42`, "", true},
	}
	for _, c := range cases {
		var got Content
		err := json.Unmarshal([]byte(c.in), &got)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("%s: got %q, %v; want %q, err=%v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestStopAndPromptForms(t *testing.T) {
	var r struct {
		Stop   StopList `json:"stop"`
		Prompt Prompt   `json:"prompt"`
	}
	if err := json.Unmarshal([]byte(`{"stop":"x","prompt":"p"}`), &r); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Stop, StopList{"x"}) || !reflect.DeepEqual(r.Prompt, Prompt{"p"}) {
		t.Fatalf("got %+v", r)
	}
	if err := json.Unmarshal([]byte(`{"stop":["a","b"],"prompt":["p","q"]}`), &r); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Stop, StopList{"a", "b"}) || !reflect.DeepEqual(r.Prompt, Prompt{"p", "q"}) {
		t.Fatalf("got %+v", r)
	}
	if err := json.Unmarshal([]byte(`{"stop":[1]}`), &r); err == nil {
		t.Fatal("numeric stop accepted")
	}
}

func TestResponseExtensionsInline(t *testing.T) {
	b, err := json.Marshal(ChatCompletionResponse{ID: "x", Extensions: Extensions{Variant: "R1"}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["variant"] != "R1" {
		t.Fatalf("variant not inlined: %s", b)
	}
	if _, ok := m["candidates"]; ok {
		t.Fatalf("empty candidates serialized: %s", b)
	}
}
