"""Build step: generate the gRPC stubs from the repository's .proto files.

The stubs are not checked in. `build_py` compiles ../proto/temper/{reward,tool}/v1/*.proto with
grpcio-tools into `temper_plugins/_proto/` of the build, so an install always matches the
protocol of the checkout it was built from. Each .proto is compiled from a copy placed at
`temper_plugins/_proto/<name>.proto`, which makes the generated imports package-absolute
(`from temper_plugins._proto import reward_pb2`); the protobuf package (`temper.reward.v1`) and
so the wire names are unchanged. Set TEMPER_PROTO_DIR to build from elsewhere than ../proto.
"""

import os
import shutil
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTO_DIR = Path(os.environ.get("TEMPER_PROTO_DIR", HERE.parent / "proto"))
PROTOS = {
    "reward": PROTO_DIR / "temper" / "reward" / "v1" / "reward.proto",
    "tool": PROTO_DIR / "temper" / "tool" / "v1" / "tool.proto",
}


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc
    import grpc_tools

    missing = [str(p) for p in PROTOS.values() if not p.is_file()]
    if missing:
        raise SystemExit(
            f"temper-plugins: cannot find {', '.join(missing)}; build from a Temper checkout "
            "(python/ next to proto/) or set TEMPER_PROTO_DIR to the proto/ directory"
        )
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    target = out_dir / "temper_plugins" / "_proto"
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text('"""Generated gRPC stubs (see setup.py)."""\n')
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "temper_plugins" / "_proto"
        staged.mkdir(parents=True)
        for name, source in PROTOS.items():
            shutil.copyfile(source, staged / f"{name}.proto")
            args = [
                "grpc_tools.protoc",
                f"-I{tmp}",
                f"-I{well_known}",
                f"--python_out={out_dir}",
                f"--pyi_out={out_dir}",
                f"--grpc_python_out={out_dir}",
                f"temper_plugins/_proto/{name}.proto",
            ]
            if protoc.main(args) != 0:
                raise SystemExit(f"temper-plugins: protoc failed on {source}")


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        generate(Path(self.build_lib))


def protobuf_requirement() -> str:
    # Generated code checks at import that the protobuf runtime is not older than the
    # generator, so require at least the version this build generates with.
    try:
        from google.protobuf import __version__ as version
    except ImportError:
        return "protobuf"
    major, minor = version.split(".")[:2]
    return f"protobuf>={major}.{minor}"


setup(
    cmdclass={"build_py": BuildWithStubs},
    install_requires=["grpcio>=1.62", protobuf_requirement()],
)
