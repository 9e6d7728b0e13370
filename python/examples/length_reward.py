"""Example reward plug-in: rewards answers whose length is close to a target word count.

    score = max(0, 1 - |words - target| / target)

`target` is the prompt's `metadata["target_words"]` (else --target). Prompts with
`metadata["free_length"] = true` are not scored (not applicable); a `target_words` that is not a
positive integer is an error for that sample, which Temper quarantines. Components: `words`
and `target`.

Run it (the token is shared with Temper through the environment, never a config file):

    export TEMPER_REWARD_TOKEN=$(openssl rand -hex 16)
    python examples/length_reward.py --port 50051

and point a `[[rewards]]` entry with `kind = "remote"` at `http://127.0.0.1:50051`.
"""

import argparse
import logging

from temper_plugins import Sample, Scored, serve_reward


def make_score(default_target: int):
    def length(batch: "list[Sample]") -> list:
        results = []
        for sample in batch:
            metadata = sample.metadata if isinstance(sample.metadata, dict) else {}
            if metadata.get("free_length"):
                results.append(None)
                continue
            target = metadata.get("target_words", default_target)
            if isinstance(target, bool) or not isinstance(target, int) or target <= 0:
                results.append(ValueError(f"target_words must be a positive integer, got {target!r}"))
                continue
            words = len(sample.response.split())
            score = max(0.0, 1.0 - abs(words - target) / target)
            results.append(Scored(score, {"words": words, "target": target}))
        return results

    return length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    parser.add_argument("--target", type=int, default=50, help="default target word count")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = serve_reward(make_score(args.target), port=args.port, host=args.host, wait=False)
    # The first stdout line tells a supervising process (e.g. a test) the bound address.
    print(f"listening on {server.address}", flush=True)
    server.wait()


if __name__ == "__main__":
    main()
