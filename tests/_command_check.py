"""Check shell commands as documented (README code blocks, config comments, the old project's README).

``extract_*`` find the commands; :func:`check_command` runs each one as far as this machine allows:
Hydra overrides of ``train_robomimic_compress.py`` / ``plan.py`` are composed (every value of a
sweep), ``accelerate launch`` flags go through Accelerate's own parser, ``plan.sh`` runs with a
recording interpreter, ``select_best_gpus.py`` runs over fake GPUs, ``setup_and_prepare.sh`` runs with
``--dry-run``, and other CLIs must accept every ``--flag`` they are shown with (their ``--help``).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HYDRA_SCRIPTS = {"train_robomimic_compress.py": "train_robomimic_compress", "plan.py": "plan"}
IGNORED = {"pip", "source", "huggingface-cli", "wandb", "nvidia-smi", "watch", "tail", "ls", "cd", "conda", "chmod",
           "echo", "sbatch"}
COMMAND_START = re.compile(r"^(python3?|accelerate|\./|[A-Z_]+=|export |timeout )")


@dataclass
class Command:
    text: str                 # as documented (continuations joined)
    where: str                # file:line
    tokens: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    inner: list[str] = field(default_factory=list)  # $(...) command substitutions


def parse(text: str, where: str) -> Command:
    """Placeholders (``<run dir>``) -> a value, optional ``[key=value]`` -> kept, ``[overrides]`` -> dropped."""
    cmd = Command(text, where)
    body = re.sub(r"\$\(([^()]*)\)", lambda m: cmd.inner.append(m.group(1)) or "SUBST", text)
    body = re.sub(r"<([a-z][a-z ]*)>", "PLACEHOLDER", body)
    body = re.sub(r"\[([^\]\s]*=[^\]\s]*)\]", r"\1", body)
    body = re.sub(r"\[[^\]]*\]", "", body)
    tokens = shlex.split(body, comments=True)
    while tokens and tokens[0] == "export":
        tokens = tokens[1:]
    while tokens and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]):
        k, v = tokens.pop(0).split("=", 1)
        cmd.env[k] = v
        if tokens and tokens[0] == "export":
            tokens = tokens[1:]
    if tokens[:1] == ["timeout"]:
        tokens = tokens[2:]
    cmd.tokens = tokens
    return cmd


def _join_continuations(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, line in lines:
        if not buf:
            start = n
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    return out


def extract_readme(path: Path = ROOT / "README.md") -> list[Command]:
    """Commands in ```bash blocks and inline code spans that start like a command."""
    cmds, lines, in_bash = [], [], False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_bash = line.strip() == "```bash" if not in_bash else False
            continue
        if in_bash:
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append((n, line))
        else:
            for span in re.findall(r"`([^`]+)`", line):
                if re.match(r"^([A-Z_]+=\S+ )*(python3? \S+\.py|python3? -m |\./\S+\.(sh|py)|accelerate launch .*\.py\b)"
                            r"|^[A-Z_]+=\$\(", span):
                    cmds.append(parse(span, f"{path.name}:{n}"))
    cmds += [parse(t, f"{path.name}:{n}") for n, t in _join_continuations(lines)]
    return cmds


def extract_config_comments(conf: Path = ROOT / "conf") -> list[Command]:
    """Indented commands in the comments of conf/**/*.yaml (``#   python ...``, ``# accelerate launch ...``)."""
    cmds = []
    for path in sorted(conf.rglob("*.yaml")):
        lines = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r"^#\s+(.*)$", line)
            if m and (COMMAND_START.match(m.group(1)) or (lines and lines[-1][1].rstrip().endswith("\\"))):
                lines.append((n, m.group(1)))
        rel = path.relative_to(ROOT)
        cmds += [parse(t, f"{rel}:{n}") for n, t in _join_continuations(lines)]
    return cmds


# ------------------------------------------------------------------------------------------ checks

def check_command(cmd: Command, tmp: Path, monkeypatch) -> str:
    """Run the check that fits ``cmd``; returns its kind ("hydra", "accelerate", ...). Fails with AssertionError."""
    for inner in cmd.inner:
        check_command(parse(inner, cmd.where + " $(...)"), tmp, monkeypatch)
    if not cmd.tokens:
        return "env"
    prog, args = cmd.tokens[0], cmd.tokens[1:]
    if prog in IGNORED:
        return "external"
    if prog in ("python", "python3"):
        if args[:1] == ["-m"]:
            return check_help(["-m", args[1]], args[2:], cmd)
        if args[0] in HYDRA_SCRIPTS:
            check_hydra(args[0], args[1:], cmd.env, monkeypatch)
            return "hydra"
        return check_help([args[0]], args[1:], cmd)
    if prog == "accelerate":
        return check_accelerate(args, cmd, monkeypatch)
    if prog == "./plan.sh":
        return check_plan_sh(args, cmd, tmp, monkeypatch)
    if prog == "./select_best_gpus.py":
        return check_select_best_gpus(args, cmd, monkeypatch)
    if prog == "./setup_and_prepare.sh":
        proc = subprocess.run(["bash", str(ROOT / "setup_and_prepare.sh"), "--dry-run", *args], capture_output=True,
                              text=True, timeout=60, cwd=ROOT)
        assert proc.returncode == 0, f"{cmd.where}: {cmd.text}: {proc.stderr.strip()}"
        return "setup"
    if prog == "./run_demo.sh":
        return check_help(["bash", "run_demo.sh"], args, cmd)
    raise AssertionError(f"{cmd.where}: no rule to check `{cmd.text}`: add one to tests/_command_check.py")


def sweep_variants(overrides: list[str]) -> list[list[str]]:
    """Every value of every sweep once (the others at their first value): ``goal_H=3,5`` -> two lists."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    keys = [o.input_line.split("=", 1)[0] for o in parsed]
    values = [list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_string()] for o in parsed]
    first = [v[0] for v in values]
    variants = [first]
    for i, vals in enumerate(values):
        variants += [first[:i] + [v] + first[i + 1:] for v in vals[1:]]
    return [[f"{k}={v}" for k, v in zip(keys, variant)] for variant in variants]


def check_hydra(script: str, args: list[str], env: dict[str, str], monkeypatch):
    """Compose the script's config with the overrides (Hydra's own parser and config store)."""
    from hydra import compose, initialize_config_dir

    config, overrides, it = HYDRA_SCRIPTS[script], [], iter(args)
    for a in it:
        if a.startswith("--config-name="):
            config = a.split("=", 1)[1]
        elif a in ("--config-name", "-cn"):
            config = next(it)
        elif a in ("-m", "--multirun"):
            continue
        elif a == "--help":  # the script's own help (conf/hydra/help/) must print and exit 0
            _help_text((script,))
        else:
            assert not a.startswith("-"), f"{script}: unknown Hydra flag {a}"
            overrides.append(a)
    cfg = None
    for variant in sweep_variants(overrides):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(config_name=config, overrides=variant, return_hydra_config=True)
        if script == "train_robomimic_compress.py":
            from training.model_config import apply_task
            from training.run_dir.launch_settings import apply_launcher_precision

            apply_launcher_precision(cfg, variant, env)
            apply_task(cfg)
            check_gpu_preset(cfg, env, monkeypatch)
    return cfg


def fake_gpus(n: int = 8):
    from gpu_utils import GpuSnapshot

    return tuple(GpuSnapshot(index=i, uuid=f"GPU-{i:08x}-aaaa-0000-0000-{i:012x}", name="Fake H100",
                             memory_used_mb=1024.0 * (8 * i % 70), memory_total_mb=80 * 1024.0,
                             utilization=float(10 * i % 100), n_processes=0) for i in range(n))


def check_gpu_preset(cfg, env: dict[str, str], monkeypatch) -> None:
    """``CUDA_VISIBLE_DEVICES=5 python train...``: the run keeps to the preset GPUs (as cuda:0..)."""
    preset = env.get("CUDA_VISIBLE_DEVICES", "")
    if not re.fullmatch(r"\d+(,\d+)*", preset):
        return
    import os

    import _fake_nvml

    from gpu_utils import select_gpus_for_run

    _fake_nvml.install(monkeypatch, fake_gpus())  # the fake GPUs behind the real nvitop
    for key in ("CUDA_DEVICE_ORDER", "MUJOCO_EGL_DEVICE_ID", "LOCAL_RANK"):
        # setenv first: monkeypatch records nothing for deleting an absent key, and the selection
        # writes these into os.environ (they would leak into later tests, robosuite's EGL included)
        monkeypatch.setenv(key, "unset")
        monkeypatch.delenv(key)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", preset)
    ids = select_gpus_for_run(int(cfg.num_gpus), float(cfg.min_free_memory_gb), bool(cfg.gpu.auto_select))
    assert ids == list(range(min(int(cfg.num_gpus), len(preset.split(","))))), ids
    assert set(os.environ["CUDA_VISIBLE_DEVICES"].split(",")) <= set(preset.split(","))


def check_accelerate(args: list[str], cmd: Command, monkeypatch) -> str:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    assert args[:1] == ["launch"], f"{cmd.where}: only `accelerate launch` is checked: {cmd.text}"
    ns = launch_command_parser().parse_args(args[1:])
    if ns.config_file:
        assert (ROOT / ns.config_file).is_file(), f"{cmd.where}: no {ns.config_file}"
        load_config_from_file(str(ROOT / ns.config_file))
    script = Path(ns.training_script).name
    assert script in HYDRA_SCRIPTS, f"{cmd.where}: launches {script}"
    env = {**cmd.env, **({"ACCELERATE_MIXED_PRECISION": ns.mixed_precision} if ns.mixed_precision else {})}
    check_hydra(script, list(ns.training_script_args), env, monkeypatch)
    return "accelerate"


def check_plan_sh(args: list[str], cmd: Command, tmp: Path, monkeypatch) -> str:
    """Run plan.sh with an interpreter that records its arguments, then compose what it would run."""
    run = tmp / "run"
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    (run / ".hydra" / "config.yaml").write_text("{}\n")
    rec, stub = tmp / "argv.json", tmp / "python-stub"
    stub.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(rec)!r}, 'w'))\n")
    stub.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", **cmd.env, "CKPT": str(run), "PYTHON": str(stub)}
    proc = subprocess.run(["bash", str(ROOT / "plan.sh"), *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=ROOT)
    assert proc.returncode == 0, f"{cmd.where}: {cmd.text}: {proc.stderr.strip()}"
    argv = json.loads(rec.read_text())
    assert argv[0] == "plan.py", argv
    for k, flag in (("GOAL_H", "goal_H"), ("N_EVALS", "n_evals")):
        if k in cmd.env:
            assert f"{flag}={cmd.env[k]}" in argv, (cmd.text, argv)
    check_hydra("plan.py", argv[1:], cmd.env, monkeypatch)
    return "plan.sh"


def check_select_best_gpus(args: list[str], cmd: Command, monkeypatch) -> str:
    import _fake_nvml

    import select_best_gpus

    _fake_nvml.install(monkeypatch, fake_gpus())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    code = select_best_gpus.main(list(args))
    assert code == 0, f"{cmd.where}: {cmd.text} exited {code}"
    return "select_best_gpus"


@functools.cache
def _help_text(target: tuple[str, ...]) -> str:
    argv = list(target) if target[0] == "bash" else [sys.executable, *target]
    proc = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, f"{' '.join(target)} --help exited {proc.returncode}: {proc.stderr[-500:]}"
    return proc.stdout


def check_help(target: list[str], args: list[str], cmd: Command) -> str:
    """Every ``--flag`` the documentation passes is one the CLI's ``--help`` lists."""
    if target[0] != "bash" and target[0] != "-m":
        assert (ROOT / target[0]).is_file(), f"{cmd.where}: no such script {target[0]}"
    text = _help_text(tuple(target))
    for a in args:
        if a.startswith("--"):
            flag = a.split("=", 1)[0]
            assert re.search(rf"(^|[\s\[,]){re.escape(flag)}\b", text), f"{cmd.where}: `{cmd.text}`: {flag} unknown"
    return "help"
