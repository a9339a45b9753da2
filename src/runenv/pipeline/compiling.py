"""The build's bytecode compiler: chosen once per build (`choose_compiler`), it keys and
completes every image (`image_tag`, `image_compiler`), and compiles what the assembled tree adds
to them (`compile_bytecode`, the bytecode stage)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from runenv.config.load import VariantConfig
from runenv.fetch import python
from runenv.pipeline.context import BuildContext
from runenv.platforms import host_platform
from runenv.tree import bytecode, bytecode_compiler
from runenv.tree.bytecode_compiler import Compiler, NoCompiler


def choose_compiler(ctx: BuildContext, vc: VariantConfig, tree: Path) -> Compiler | NoCompiler:
    """The interpreter that compiles this build's bytecode
    (`bytecode_compiler.choose_compiler`): the runtime's own in `tree`, or for a cross build
    the host's runtime of the same version; or `NoCompiler` with the reason the build ships no
    bytecode."""

    def host_python() -> Path:
        host = host_platform()
        source = python.variant_source(vc, host, mirror=ctx.options.python_mirror)
        archive = python.download(
            source, ctx.cache, client=ctx.client, timeout=ctx.timeout, offline=ctx.options.offline
        )
        runtime = bytecode_compiler.shared_runtime(archive, source.sha256)
        return runtime / host.info.interpreter(ctx.plan.python_version)

    return bytecode_compiler.choose_compiler(
        ctx.plan, tree, native=ctx.native, host_python=host_python
    )


def in_tree(
    ctx: BuildContext, compiler: Compiler | NoCompiler, tree: Path
) -> Compiler | NoCompiler:
    """`compiler` as it runs on `tree`: natively, the interpreter of `tree` itself (the same
    runtime as the build's, at the place that compiles); a cross build's, unchanged."""
    if isinstance(compiler, Compiler) and ctx.native:
        return replace(compiler, interpreter=tree / ctx.plan.interpreter)
    return compiler


def image_tag(compiler: Compiler | NoCompiler) -> str:
    """What decides an image's bytecode, for its cache key."""
    return compiler.tag if isinstance(compiler, Compiler) else "none"


def image_compiler(
    ctx: BuildContext, compiler: Compiler | NoCompiler, *, wait: Callable[[], object] | None = None
) -> Callable[[Path], None]:
    """What completes a new wheel image: its bytecode, once `wait` returns (a native build's
    compiler is in the runtime that is still being unpacked)."""

    def compile_image(image: Path) -> None:
        if isinstance(compiler, Compiler):
            if wait is not None:
                wait()
            bytecode.compile_image(
                ctx.plan, image, compiler, timeout=ctx.timeout, log_file=ctx.log.path
            )

    return compile_image


def compile_bytecode(
    ctx: BuildContext, tree: Path, copied: Sequence[str], compiler: Compiler | NoCompiler
) -> bytecode.BytecodeResult:
    """Bytecode: every `.py` of the tree compiled by an interpreter of its X.Y (`bytecode`);
    what the images brought is kept, so this compiles the copied files and little else."""
    result = bytecode.compile_runtime(
        ctx.plan, tree, copied, in_tree(ctx, compiler, tree), timeout=ctx.timeout,
        log_file=ctx.log.path,
    )  # fmt: skip
    if not result.compiled and ctx.plan.compile_bytecode:
        ctx.options.report(f"{ctx.name}: warning: no bytecode: {result.reason}")
    return result
