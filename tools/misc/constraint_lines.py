"""Filter ``pip freeze`` output (stdin) into pinned constraint lines.

Drops the packages setup installs on its own terms (torch and its CUDA
wheels, mmcv built from source) and every direct reference
(``name @ file:///...``): a machine's paths and wheel hashes must never reach
the pinned files.
"""
import re
import sys

OWN_TERMS = re.compile(
    r'^(torch|torchvision|mmcv|triton|nvidia-[\w.-]+|cuda-[\w.-]+)\b',
    re.IGNORECASE)


def constraint_lines(freeze_output: str) -> list:
    lines = []
    for line in freeze_output.splitlines():
        line = line.strip()
        if not line or line.startswith('#') or ' @ ' in line:
            continue
        if OWN_TERMS.match(line) or '==' not in line:
            continue
        lines.append(line)
    return lines


if __name__ == '__main__':
    print('\n'.join(constraint_lines(sys.stdin.read())))
