"""McCabe (cyclomatic) complexity of Rust functions, as a metrics file.

    scripts/complexity [--top N] PATH... > complexity.txt

(scripts/complexity finds a Python 3 that runs and runs this file.)

Runs rust-code-analysis-cli (Mozilla's; `cargo install --locked
rust-code-analysis-cli`) over the .rs files under each PATH and prints
Hydra's `name value` lines, which a recipe's `[reports] metrics` reads
(docs/recipe.md, "buildmesh's own recipe"):

    mccabe_max 27           the most complex function's complexity
    mccabe_mean 3.13        the mean over all functions
    functions_over_15 23    how many are above 15
    functions 2017          how many functions were measured

and, on stderr (the step's log), the --top most complex functions with
where they are, so a rise of mccabe_max names its function.

A function's complexity is 1 plus its decisions, as rust-code-analysis
counts them: each if, else if, for, while, loop, && and ||, `?`, and
each match arm (so a match of n arms adds n, where McCabe's graph adds
n - 1). rust-code-analysis measures each closure as a function of its
own; here a closure's decisions count in the named function that holds
it (a closure is part of its function's logic, and an iterator chain of
small closures is not 1 + n paths of its own); a closure outside any
function counts as one.

Exits 1, saying what to install, when rust-code-analysis-cli is missing,
and 1 when it measures no function at all (a wrong PATH), so a recipe
step fails rather than reporting nothing.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

TOOL = "rust-code-analysis-cli"
INSTALL = "cargo install --locked rust-code-analysis-cli"
# McCabe's paper suggested 10; 15 is the line issue 17 draws.
OVER = 15


def fail(message):
    print(f"scripts/complexity: {message}", file=sys.stderr)
    sys.exit(1)


def own(space):
    """A space's own cyclomatic complexity: rust-code-analysis's `sum`
    covers the space and every space nested in it."""
    inner = sum(child["metrics"]["cyclomatic"]["sum"] for child in space["spaces"])
    return space["metrics"]["cyclomatic"]["sum"] - inner


def closures_decisions(space):
    """Decisions in the closures nested in `space`, down to the next named
    function (which is measured on its own)."""
    total = 0
    for child in space["spaces"]:
        if child["kind"] == "function" and child["name"] == "<anonymous>":
            total += own(child) - 1 + closures_decisions(child)
    return total


def functions(space, path, in_function):
    """(complexity, path, line, name) of every function in `space`;
    `in_function`: a closure here is counted in the function holding it."""
    found = []
    is_function = space["kind"] == "function"
    if is_function and (space["name"] != "<anonymous>" or not in_function):
        complexity = own(space) + closures_decisions(space)
        found.append((int(complexity), path, space["start_line"], space["name"]))
    for child in space["spaces"]:
        found += functions(child, path, is_function)
    return found


def measure(paths):
    """Runs the tool; returns every function of every file."""
    command = [TOOL, "--metrics", "--output-format", "json", "--include", "*.rs"]
    for path in paths:
        # Absolute: given ".", the tool skips it as a hidden directory.
        command += ["--paths", os.path.abspath(path)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"{TOOL} exited {run.returncode}: {run.stderr.strip()}")
    found = []
    for number, line in enumerate(run.stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            unit = json.loads(line)
            root = os.path.relpath(unit["name"])
            found += functions(unit, root, False)
        except (ValueError, KeyError, TypeError) as error:
            fail(
                f"{TOOL} printed what this script cannot read (line {number}: {error!r}); "
                "it was written for rust-code-analysis-cli 0.0.25's JSON"
            )
    return found


def main():
    parser = argparse.ArgumentParser(
        description="McCabe complexity of Rust functions, as Hydra metric lines."
    )
    parser.add_argument("--top", type=int, default=5, help="functions listed on stderr")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a .rs file or a directory")
    args = parser.parse_args()
    if shutil.which(TOOL) is None:
        fail(f"{TOOL} is missing (not on PATH): install it with `{INSTALL}`")
    missing = [path for path in args.paths if not os.path.exists(path)]
    if missing:
        fail(f"no such file or directory: {', '.join(missing)}")
    found = measure(args.paths)
    if not found:
        fail(f"{TOOL} found no Rust function under {' '.join(args.paths)}")
    values = [complexity for complexity, *_ in found]
    print(f"mccabe_max {max(values)}")
    print(f"mccabe_mean {sum(values) / len(values):.2f}")
    print(f"functions_over_{OVER} {sum(1 for value in values if value > OVER)}")
    print(f"functions {len(values)}")
    sys.stdout.flush()
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    print(f"the {min(args.top, len(found))} most complex of {len(found)} functions:", file=sys.stderr)
    for complexity, path, line, name in found[: args.top]:
        print(f"  {complexity:4} {name} ({path}:{line})", file=sys.stderr)


if __name__ == "__main__":
    main()
