#!/usr/bin/env python3
"""Writes synthetic comparison rows {user_input, responses_and_scores: [{response, score, source}]} of the kind the
default-model recipe's feedback step makes: an instruction with checkable constraints (a story about an animal with
a name, an object to mention, a word limit, a fixed ending) and short children's stories that follow more or fewer of
them, scored by the fraction followed. The quality run trains on them next to HH-RLHF's pairs
(go test ./trainjobs -run QualityHH -quality -quality.extra FILE) to check that thousands of non-HH task pairs do not
break the reward model's HH-RLHF accuracy or its clear-cut preferences. They are about stories only: no text of
trainjobs/testdata/clear_cut_pairs.jsonl is in them (the script checks it). Deterministic: seed 11.

Usage: python3 scripts/make_story_pairs.py [N] > /tmp/story_pairs.jsonl   (N rows, default 3000; each makes 1-6 pairs)
"""
import json
import random
import sys

NAMES = ["Tom", "Lily", "Max", "Sue", "Ben", "Mia", "Sam", "Anna", "Leo", "Zoe", "Tim", "Lucy", "Jack", "Ella"]
ANIMALS = ["cat", "dog", "bird", "fox", "bunny", "bear", "frog", "duck", "mouse", "horse", "fish", "owl"]
OBJECTS = ["ball", "hat", "box", "kite", "cake", "boat", "tree", "car", "book", "flower", "drum", "key"]
PLACES = ["park", "garden", "forest", "house", "pond", "beach", "farm", "hill"]
FEELINGS = ["happy", "sad", "scared", "excited", "tired", "curious", "proud"]
MIDDLE = [
    "One day, {name} went to the {place}.",
    "{name} saw a big {object2} near the {place}.",
    "{name} felt {feeling}.",
    "{name} played with a friend all day.",
    "The sun was warm and the sky was blue.",
    "{name} wanted to share with everyone.",
    "A little bird sang a song.",
    "{name} ran fast and laughed.",
    "Mom said it was time to go home.",
    "They had a lot of fun together.",
]


def story(rng, name, animal, obj, follow_obj, follow_end, n_sent):
    s = [f"Once upon a time, there was a {animal} named {name}."]
    mids = rng.sample(MIDDLE, min(n_sent, len(MIDDLE)))
    other = rng.choice([o for o in OBJECTS if o != obj])
    for m in mids:
        s.append(m.format(name=name, place=rng.choice(PLACES), object2=other, feeling=rng.choice(FEELINGS)))
    if follow_obj:
        s.insert(rng.randint(1, len(s)), f"{name} found a {obj}.")
    if follow_end:
        s.append("The end.")
    return " ".join(s)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rng = random.Random(11)
    with open("trainjobs/testdata/clear_cut_pairs.jsonl") as f:
        banned = set()
        for line in f:
            if line.strip():
                t = json.loads(line)
                banned |= {t["prompt"], t["chosen"], t["rejected"]}
    for _ in range(n):
        name, animal, obj = rng.choice(NAMES), rng.choice(ANIMALS), rng.choice(OBJECTS)
        limit = rng.choice([40, 60, 80])
        instr = (f"Write a short story about a {animal} named {name}. Mention a {obj}. "
                 f"Use fewer than {limit} words. End with 'The end.'")
        cands = []
        while len({c["score"] for c in cands}) < 2:  # a row must make at least one pair
            cands = []
            for _ in range(rng.randint(2, 4)):
                fo, fe = rng.random() < 0.5, rng.random() < 0.5
                text = story(rng, name, animal, obj, fo, fe, rng.randint(1, 8))
                short = len(text.split()) < limit
                score = round((fo + fe + short) / 3 * 10, 2)
                if text in banned or instr in banned:
                    sys.exit("a clear-cut pair's text is in the story pairs")
                cands.append({"response": text, "score": score, "source": "synthetic"})
        print(json.dumps({"user_input": instr, "responses_and_scores": cands}, ensure_ascii=False))


if __name__ == "__main__":
    main()
