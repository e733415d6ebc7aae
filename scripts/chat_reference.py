#!/usr/bin/env python3
"""Reference prompts for package chat, computed independently of the Go code.

- Jinja chat templates (chat/testdata/templates/*.jinja) are rendered with Python's jinja2 the way
  transformers' apply_chat_template does: ImmutableSandboxedEnvironment(trim_blocks=True,
  lstrip_blocks=True, extensions=[loopcontrols]), add_generation_prompt=True, bos_token, eos_token and a
  raise_exception() and strftime_now() globals (the date it inserts is today's; the Go test masks it).
- Built-in templates are computed from their published definitions: Stanford Alpaca's PROMPT_DICT
  (single-turn only), FastChat's vicuna_v1.1 / ADD_COLON_TWO algorithm, Meta's Llama-2-chat Jinja template,
  and the ChatML Jinja template.

Usage (Debian: apt-get install python3-jinja2), from the repository root:
    python3 scripts/chat_reference.py > chat/testdata/reference.json
"""
import datetime
import json
import os
import sys

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chat", "testdata")


def raise_exception(message):
    raise TemplateError(message)


def strftime_now(fmt):
    return datetime.datetime.now().strftime(fmt)


def hf_render(source, messages, bos, eos):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    template = env.from_string(source)
    try:
        return template.render(messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos), None
    except TemplateError as e:
        return None, str(e)


# Stanford Alpaca train.py PROMPT_DICT (the paper's Algorithm 1).
PROMPT_DICT = {
    "prompt_input": (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
    ),
    "prompt_no_input": (
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Response:"
    ),
}


def alpaca(messages):
    """Single-turn only: [system?] user [user-as-input]. A system prompt replaces the preamble, as Ollama's
    Modelfiles for Alpaca-format models render it: "{{ .System }}\n\n### Instruction:\n{{ .Prompt }}..."."""
    turns = [m for m in messages if m["role"] != "system"]
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system" and m["content"])
    if [m["role"] for m in turns] == ["user"]:
        example = {"instruction": turns[0]["content"], "input": ""}
    elif [m["role"] for m in turns] == ["user", "user"]:
        example = {"instruction": turns[0]["content"], "input": turns[1]["content"]}
    else:
        return None
    key = "prompt_input" if example["input"] != "" else "prompt_no_input"
    prompt = PROMPT_DICT[key].format_map(example)
    if system:
        prompt = system + "\n\n" + prompt[prompt.index("### Instruction:"):]
    return prompt


def vicuna(messages):
    """FastChat Conversation(name="vicuna_v1.1", sep_style=ADD_COLON_TWO, sep=" ", sep2="</s>").get_prompt()."""
    system = ("A chat between a curious user and an artificial intelligence assistant. "
              "The assistant gives helpful, detailed, and polite answers to the user's questions.")
    rest = messages
    if messages[0]["role"] == "system":
        system, rest = messages[0]["content"], messages[1:]
    roles = {"user": "USER", "assistant": "ASSISTANT"}
    conv = [(roles[m["role"]], m["content"]) for m in rest] + [("ASSISTANT", None)]
    if any(r != ("USER" if i % 2 == 0 else "ASSISTANT") for i, (r, _) in enumerate(conv)):
        return None  # FastChat assumes alternating turns
    seps = [" ", "</s>"]
    ret = system + seps[0]
    for i, (role, message) in enumerate(conv):
        if message:
            ret += role + ": " + message + seps[i % 2]
        else:
            ret += role + ":"
    return ret


def main():
    with open(os.path.join(ROOT, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    templates = {}
    for name in sorted(cases["tokens"]):
        with open(os.path.join(ROOT, "templates", name + ".jinja"), encoding="utf-8") as f:
            templates[name] = f.read()
    out = {"jinja": [], "builtin": []}
    for name, source in templates.items():
        tok = cases["tokens"][name]
        for i, conv in enumerate(cases["conversations"]):
            text, err = hf_render(source, conv, tok["bos"], tok["eos"])
            out["jinja"].append({"template": name, "conversation": i, "output": text, "error": err})
    for i, conv in enumerate(cases["conversations"]):
        for name, fn in [("alpaca", alpaca), ("vicuna", vicuna)]:
            text = fn(conv)
            if text is not None:
                out["builtin"].append({"template": name, "conversation": i, "output": text, "error": None})
        text, err = hf_render(templates["llama2"], conv, "<s>", "</s>")
        out["builtin"].append({"template": "llama2", "conversation": i, "output": text, "error": err})
        text, err = hf_render(templates["chatml"], conv, "", "")
        out["builtin"].append({"template": "chatml", "conversation": i, "output": text, "error": err})
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
