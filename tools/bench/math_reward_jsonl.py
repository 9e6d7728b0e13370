#!/usr/bin/env python3
"""Writes a JSONL of math rollouts for benchmarking `temper reward` with `kind = "math"`.

Each line is `{"id", "messages", "response", "answer", "metadata": {"right"}}` (`right`: whether
the final answer is the right one, so the scored output can be checked). Responses are ~1.5 kB of reasoning
followed by a final answer in one of the forms the reward reads (box, answer tag, answer phrase,
`$…$`, last line), drawn from a fixed list covering every answer type, right or wrong, with a
fixed seed so every run scores the same file.

Usage: python3 tools/bench/math_reward_jsonl.py [--lines 10000] [--out /tmp/math_bench.jsonl]
then:  temper reward --config tools/bench/math_reward.toml --input /tmp/math_bench.jsonl --out /tmp/scored.jsonl
"""

import argparse
import json
import random

# (reference, a right answer, a wrong answer)
ANSWERS = [
    ("42", "42", "24"),
    (r"\frac{3}{4}", "0.75", r"\frac{4}{3}"),
    (r"3\sqrt{2}", r"\sqrt{18}", r"2\sqrt{3}"),
    (r"\frac{1+\sqrt{5}}{2}", r"\frac{\sqrt{5}+1}{2}", "2"),
    ("(1, 2)", r"\left(1, 2\right)", "(2, 1)"),
    (r"\{1, 2, 3\}", "3, 2, 1", r"\{1, 2\}"),
    (r"[0, 1)", r"[0,1)", r"(0, 1]"),
    (r"(-\infty, 0) \cup (1, \infty)", r"(1, \infty) \cup (-\infty, 0)", r"(-\infty, 1)"),
    (r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", r"\begin{bmatrix}1&2\\3&4\end{bmatrix}",
     r"\begin{pmatrix} 1 & 3 \\ 2 & 4 \end{pmatrix}"),
    ("x = 3", "3", "x = 4"),
    ("y = 2x + 1", "2x - y + 1 = 0", "y = 2x - 1"),
    (r"x^2 + 2x + 1", r"(x+1)^2", r"x^2 + 1"),
    (r"\frac{n(n+1)}{2}", r"\frac{n^2+n}{2}", r"\frac{n^2-n}{2}"),
    (r"50\%", "0.5", "0.05"),
    ("1,000", "1000", "100"),
    (r"\text{Monday}", "monday", "Tuesday"),
    ("B", "The correct option is (B).", "C"),
    (r"2\pi", r"\pi \cdot 2", r"\pi"),
]

WORDS = ("we compute the value step by step then simplify the expression and check each case "
         "carefully so that nothing is missed note that").split()


def reasoning(rng):
    parts = []
    while sum(len(p) + 1 for p in parts) < 1500:
        if rng.random() < 0.15:
            parts.append(f"${rng.randint(1, 99)} + {rng.randint(1, 99)} = {rng.randint(2, 198)}$")
        else:
            parts.append(rng.choice(WORDS))
    return " ".join(parts)


def finish(rng, answer):
    form = rng.randrange(5)
    if form == 0:
        return f"Therefore the answer is $\\boxed{{{answer}}}$."
    if form == 1:
        return f"<answer>{answer}</answer>"
    if form == 2:
        return f"The final answer is {answer}"
    if form == 3:
        return f"So we get ${answer}$ in the end"
    return f"\n{answer}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=10000)
    ap.add_argument("--out", default="/tmp/math_bench.jsonl")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with open(args.out, "w", encoding="utf-8") as f:
        for i in range(args.lines):
            reference, right, wrong = rng.choice(ANSWERS)
            is_right = rng.random() < 0.5
            answer = right if is_right else wrong
            row = {
                "id": f"math-{i}",
                "messages": [{"role": "user", "content": "Solve the problem."}],
                "response": reasoning(rng) + "\n" + finish(rng, answer),
                "answer": reference,
                "metadata": {"right": is_right},
            }
            f.write(json.dumps(row) + "\n")
    print(f"wrote {args.lines} lines to {args.out}")


if __name__ == "__main__":
    main()
