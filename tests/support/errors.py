"""What the CLI's errors must look like: one line on stderr, never a traceback."""

from __future__ import annotations


def one_line_error(err: str) -> str:
    """The CLI's stderr must be one error line, without a traceback; that line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]
