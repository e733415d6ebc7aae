#!/usr/bin/env python3
"""Writes trainjobs/testdata/harm_pairs.jsonl: synthetic preference pairs {prompt, chosen, rejected} in which the
chosen answer is a harmless, helpful one and the rejected answer recommends violence, cruelty, theft, lies, fraud
or other harm. They augment HH-RLHF's harmless-base pairs, whose harmful words are too rare for a small reward model
trained from scratch to learn what harm is (e.g. "poison" is in 9 chosen and 15 rejected answers of 2,312).

None of the prompts or answers of trainjobs/testdata/clear_cut_pairs.jsonl (the pairs the trained model is
tested on) is in this file; the script checks it. The two files were written together and cover the same kinds
of harm (violence, cruelty to animals, theft, keeping what is not yours, cheating, weapons) in other words, so
the clear-cut check shows that the model learned what these pairs teach, not that it recognizes new kinds of
harm. Lengths are mixed on purpose (long harmful answers, short
harmless ones and the reverse), so that length does not tell the two apart. Deterministic: seed 7.

Usage: python3 scripts/make_harm_pairs.py > trainjobs/testdata/harm_pairs.jsonl
"""
import json
import random
import sys

SITUATIONS = [
    # (prompt, who/what the harm would hit, who can help)
    ("My roommate keeps eating my food. What should I do?", "your roommate", "a calm talk and a shelf of your own"),
    ("A kid at school keeps teasing my son. How can I stop it?", "that kid", "his teacher or the principal"),
    ("My sister borrowed money and won't pay it back.", "your sister", "a written payment plan"),
    ("Someone keeps parking in my spot at my apartment.", "the driver", "your landlord"),
    ("My boss yelled at me in front of everyone today.", "your boss", "human resources"),
    ("The neighbors play loud music every night.", "the neighbors", "a polite note or the building manager"),
    ("My dog keeps chewing my shoes.", "the dog", "a trainer and some chew toys"),
    ("Raccoons keep getting into my garbage.", "the raccoons", "a locking lid or animal control"),
    ("A stray cat keeps coming into my garden.", "the cat", "a local animal shelter"),
    ("I need money fast for my bills.", "a store", "a budget plan, extra shifts or a local aid office"),
    ("I can't pay my rent this month.", "your landlord", "a talk with your landlord about a payment plan"),
    ("My ex is dating someone new and I'm angry.", "your ex", "a friend or a counselor"),
    ("My coworker took credit for my work.", "your coworker", "your manager, with your notes and emails"),
    ("I didn't study for my test tomorrow.", "your teacher", "a study plan for tonight"),
    ("My brother broke my phone.", "your brother", "your parents, to agree on how he pays for it"),
    ("A man at the bar insulted my girlfriend.", "the man", "walking away and telling the staff"),
    ("I want my friend's new bike.", "your friend", "saving up for one, or asking to borrow it"),
    ("My teacher gave me a bad grade.", "your teacher", "asking the teacher how to improve"),
    ("The store overcharged me.", "the cashier", "the store's customer service"),
    ("My neighbor's tree drops leaves in my yard.", "your neighbor", "a friendly talk with your neighbor"),
    ("Someone online said mean things about me.", "that person", "blocking and reporting them"),
    ("My parents won't let me go to the party.", "your parents", "asking them what would change their mind"),
    ("A dog in my street barks at me every morning.", "the dog", "its owner"),
    ("I got a parking ticket I think is unfair.", "the officer", "the appeal form on the city's website"),
    ("My little sister keeps taking my clothes.", "your sister", "a talk with her and your parents"),
    ("I'm so angry I want to hurt somebody.", "somebody", "a counselor, a friend or a helpline"),
    ("How can I get more followers online?", "other people", "posting things people enjoy, regularly"),
    ("My car was scratched in the parking lot.", "whoever did it", "your insurance and the lot's cameras"),
    ("The kid next door threw a ball through my window.", "the kid", "his parents, to agree on the repair"),
    ("I want to win the school election.", "the other candidates", "good ideas and talking to classmates"),
]

HARMS = [
    "poison {who}", "beat up {who}", "hit {who} with a bat", "stab {who}", "burn down {who}'s house",
    "break {who}'s windows with rocks", "slash {who}'s tires", "steal from {who}", "threaten {who} with a knife",
    "push {who} down the stairs", "kill {who}", "spread lies about {who} online", "set {who}'s car on fire",
    "drown {who}", "lock {who} in a closet", "break {who}'s fingers", "blackmail {who}", "rob {who}",
    "shoot {who}", "hurt {who} badly", "put rat poison in {who}'s food", "trap {who} and starve them",
    "forge {who}'s signature", "smash {who}'s phone", "choke {who}",
    # dishonesty: theft, lies and fraud without violence
    "take {who}'s money without asking", "keep {who}'s money and lie about it", "lie to {who} and cheat them",
    "trick {who} into giving you their savings", "secretly take {who}'s things and sell them",
]

# Situations about something that belongs to someone else, with their own harmful answers (keeping it).
FINDERS = [
    ("I found a phone on the bus. What should I do?", "giving it to the bus company's lost and found",
     ["keep the phone and sell it online", "wipe the phone and keep it for yourself", "sell it for cash before anyone asks"]),
    ("The cashier gave me too much change.", "going back and giving the extra money to the cashier",
     ["keep the extra money and leave quickly", "keep the money, it's their mistake", "pocket it and never go back"]),
    ("I found a bag of money in the park.", "taking it to the police so the owner can get it back",
     ["keep all the money and tell no one", "spend the money before anyone finds out", "hide the money at home and keep it"]),
    ("My friend left her purse at my house.", "calling her so she can pick it up",
     ["take the cash out of her purse first", "keep her credit card and use it", "take what you want from the purse and say you never saw it"]),
    ("Someone dropped a watch at the gym.", "handing it to the front desk",
     ["put it in your bag and walk out", "keep the watch and sell it", "take it home, nobody saw you"]),
]

HARM_FRAMES = [
    "Just {harm}.",
    "{Harm}.",
    "You should {harm}. That will teach them.",
    "Wait until nobody is around, then {harm}, and make sure no one sees you do it.",
    "The best way is to {harm} at night, when there are no witnesses, so you won't get caught.",
    "Honestly, {harm}. Nobody will ever know it was you.",
]

HELP_FRAMES = [
    "Try {help}.",
    "I would try {help}. Stay calm and be kind, even when it is hard.",
    "It's best to stay calm. You could try {help}, which usually works better than getting angry.",
    "Take a deep breath first. Then try {help}; if that doesn't work, ask someone you trust for advice.",
    "Please don't do anything that could hurt anyone. Try {help}.",
    "That sounds frustrating. A good first step is {help}.",
]


def cap(s):
    return s[0].upper() + s[1:]


def main():
    rng = random.Random(7)
    with open("trainjobs/testdata/clear_cut_pairs.jsonl") as f:
        test = [json.loads(line) for line in f if line.strip()]
    banned = {t["prompt"] for t in test} | {t["chosen"] for t in test} | {t["rejected"] for t in test}
    out = []
    for prompt, who, helper in SITUATIONS:
        for harm in rng.sample(HARMS, 8):
            h = harm.format(who=who)
            rejected = rng.choice(HARM_FRAMES).format(harm=h, Harm=cap(h))
            chosen = rng.choice(HELP_FRAMES).format(help=helper)
            if prompt in banned or chosen in banned or rejected in banned:
                sys.exit("a test pair's text is in the augmentation")
            out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    for prompt, helper, harms in FINDERS:
        for h in harms:
            for _ in range(2):
                rejected = rng.choice(HARM_FRAMES).format(harm=h, Harm=cap(h))
                chosen = rng.choice(HELP_FRAMES).format(help=helper)
                if prompt in banned or chosen in banned or rejected in banned:
                    sys.exit("a test pair's text is in the augmentation")
                out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    rng.shuffle(out)
    for row in out:
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
