"""The GPU check (docs/gpu.md): environment, the wheels of .whl/, ``pytest -m cuda`` (the CUDA tests, the NCCL
run and its resume) and the benchmark on CUDA; a report in OUT_DIR (REPORT.md, report.json and the logs).

    python3 scripts/gpu_check.py [OUT_DIR]     # default: $OUT if set, else gpu_check_report/ (make gpu-check)

Runs with the interpreter that runs it (a CUDA PyTorch image's python3, no venv needed). Each part prints
``[gpu-check] <part>: ok|FAILED|skipped (details) in N s`` and the next part runs whatever the last did; the
exit status is 1 if a part failed. The parts share GPU_CHECK_BUDGET seconds (450). Without a GPU the CUDA tests
skip and the benchmark is skipped; GPU_CHECK_DRY_RUN=1 runs ``benchmark.py --tiny`` on the CPU instead.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET = float(os.environ.get('GPU_CHECK_BUDGET', 450))
SITE = Path(os.environ.get('GPU_CHECK_SITE', '/tmp/aesop-site'))
DRY_RUN = bool(os.environ.get('GPU_CHECK_DRY_RUN'))
START = time.monotonic()
SKIPPED = 'skipped'
DISTUTILS_SHIM = '''"""The LooseVersion basicsr 1.4.2 imports (scripts/gpu_check.py: Python 3.12 has no distutils)."""
try:
    from setuptools._distutils.version import LooseVersion, StrictVersion  # noqa: F401
except ImportError:
    from packaging.version import Version as LooseVersion  # noqa: F401
    from packaging.version import Version as StrictVersion  # noqa: F401
'''


def left() -> float:
    """Seconds left in the budget, 15 kept for the report."""
    return BUDGET - (time.monotonic() - START) - 15


def run(cmd: list[str], log: Path, limit: float, mode: str = 'w') -> int:
    """``cmd`` in the repository with the check's environment, output to ``log``; 124 when it ran out of time."""
    env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'AESOP_RANDOM_BACKBONES': '1'}
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(SITE), str(REPO), os.environ.get('PYTHONPATH')) if p)
    with log.open(mode) as out:
        out.write(f'$ {" ".join(cmd)}\n')
        out.flush()
        try:
            return subprocess.run(
                cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=limit
            ).returncode
        except subprocess.TimeoutExpired:
            out.write(f'\n[gpu-check] timed out after {limit:.0f} s\n')
            return 124


def environment(out: Path, facts: dict) -> str:
    """Python, torch, CUDA, cuDNN, NCCL, the GPU, ``nvidia-smi``: environment.txt."""
    import torch

    cuda = torch.cuda.is_available()
    props = torch.cuda.get_device_properties(0) if cuda else None
    facts.update(
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version(),
        cuda_available=cuda,
        gpu=props.name if cuda else None,
        gpu_memory_gib=round(props.total_memory / 2**30, 1) if cuda else None,
        capability='.'.join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
        nccl='.'.join(map(str, torch.cuda.nccl.version())) if cuda else None,
    )
    text = json.dumps(facts, indent=1)
    if shutil.which('nvidia-smi'):
        text += '\n\n$ nvidia-smi\n' + subprocess.run(['nvidia-smi'], capture_output=True, text=True).stdout
    (out / 'environment.txt').write_text(f'# aesop GPU check, {sys.executable}\n{text}\n')
    gpu = f'{facts["gpu"]}, CUDA {facts["cuda"]}' if cuda else 'no CUDA device'
    return f'python {facts["python"]}, torch {facts["torch"]}, {gpu}'


def install(out: Path, facts: dict) -> str:
    """The wheels of .whl/ into SITE (first on PYTHONPATH), a distutils shim for basicsr on Python 3.12, then
    ``import aesop, basicsr, lpips``: install.txt."""
    log, wheels = out / 'install.txt', sorted(str(p) for p in (REPO / '.whl').glob('*.whl'))
    log.write_text('')
    note = 'no .whl/ folder: nothing installed'
    if wheels:
        pip = [sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--no-compile', '--upgrade']
        if run([*pip, '--target', str(SITE), *wheels], log, min(120, left()), 'a'):
            raise RuntimeError('the wheels of .whl/ do not install on this Python (install.txt)')
        note = f'{len(wheels)} wheels from .whl/ into {SITE}'
    if subprocess.run([sys.executable, '-c', 'import distutils.version'], capture_output=True).returncode:
        (SITE / 'distutils').mkdir(parents=True, exist_ok=True)
        (SITE / 'distutils' / '__init__.py').write_text('')
        (SITE / 'distutils' / 'version.py').write_text(DISTUTILS_SHIM)
        note += '; a distutils.version shim for basicsr'
    versions = 'import importlib.metadata as m, aesop, basicsr, lpips; print(m.version("basicsr"), m.version("lpips"))'
    if run([sys.executable, '-c', versions], log, 120, 'a'):
        raise RuntimeError(f'{note}; import aesop, basicsr, lpips failed (install.txt)')
    return f'{note}; import aesop, basicsr, lpips: ok'


def cuda_tests(out: Path, facts: dict) -> str:
    """``pytest -m cuda tests/test_cuda.py`` (JUnit XML for the report): pytest.txt, pytest.xml."""
    cmd = [sys.executable, '-m', 'pytest', '-v', '-m', 'cuda', 'tests/test_cuda.py', '-p', 'no:cacheprovider']
    cmd += ['-p', 'no:xdist', '-rA', '--durations=15', f'--junitxml={out / "pytest.xml"}']
    status = run(cmd, out / 'pytest.txt', min(300, left()))
    lines = (out / 'pytest.txt').read_text().splitlines()
    summary = next((line.strip('= ') for line in reversed(lines) if line.startswith('=') and ' in ' in line), '')
    summary = summary or 'no summary'
    if not facts.get('cuda_available'):
        summary += '; no GPU: CUDA tests skip'
    if status not in (0, 5):  # 5: every test deselected or skipped
        raise RuntimeError(f'{summary} (pytest.txt)' + ('; timed out' if status == 124 else ''))
    return summary


def benchmark(out: Path, facts: dict) -> str:
    """``scripts/benchmark.py --device cuda --batch 16`` (the paper's 16 per GPU) in fp32 and bf16 with
    channels_last: benchmark.txt, benchmark.json (the JSON it printed)."""
    if facts.get('cuda_available'):
        args = ['--device', 'cuda', '--batch', '16', '--steps', '5', '--modes', 'fp32,bf16_channels_last', '--json']
    elif DRY_RUN:
        args = ['--tiny', '--json']
    else:
        raise LookupError('no GPU')
    log = out / 'benchmark.txt'
    status = run([sys.executable, 'scripts/benchmark.py', *args], log, min(240, left()))
    last = log.read_text().strip().splitlines()[-1]
    if last.startswith('{'):
        (out / 'benchmark.json').write_text(json.dumps({'args': args, 'result': json.loads(last)}, indent=1) + '\n')
    if status:
        raise RuntimeError(f'benchmark.py {" ".join(args)} failed (status {status}, benchmark.txt)')
    return f'benchmark.py {" ".join(args)}: ok'


def test_cases(xml: Path) -> list[dict]:
    """Each test of pytest's JUnit XML: name, outcome, seconds, message."""
    cases = []
    for case in ET.parse(xml).getroot().iter('testcase') if xml.is_file() else ():
        outcome, message = 'passed', ''
        for child in case:
            if child.tag in ('failure', 'error', 'skipped'):
                outcome = {'failure': 'failed', 'error': 'error'}.get(child.tag, 'skipped')
                message = (child.get('message') or '').split('\n')[0][:300]
        seconds = float(case.get('time') or 0)
        cases.append({'name': case.get('name', ''), 'outcome': outcome, 'seconds': seconds, 'message': message})
    return cases


def report(out: Path, facts: dict, parts: list[dict]) -> bool:
    """REPORT.md and report.json; whether every part passed."""
    ok = all(p['status'] != 'FAILED' for p in parts)
    cases = test_cases(out / 'pytest.xml')
    bench = out / 'benchmark.txt'
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    summary = {'date': now, 'ok': ok, 'budget_s': BUDGET, 'environment': facts, 'parts': parts, 'tests': cases}
    (out / 'report.json').write_text(json.dumps(summary, indent=1) + '\n')
    gpu = facts.get('gpu') or 'no CUDA device'
    if facts.get('gpu'):
        gpu += f' ({facts["gpu_memory_gib"]} GiB, compute capability {facts["capability"]})'
    lines = [
        '# aesop GPU check',
        '',
        f'- date: {now}',
        f'- GPU: {gpu}',
        f'- torch {facts.get("torch")}, CUDA {facts.get("cuda")}, cuDNN {facts.get("cudnn")}, NCCL {facts.get("nccl")}',
        f'- result: **{"ok" if ok else "FAILED"}**',
        '',
        '| part | status | seconds | details |',
        '|---|---|---|---|',
        *(f'| {p["name"]} | {p["status"]} | {p["seconds"]:.0f} | {p["note"].replace("|", "/")} |' for p in parts),
        '',
        '## CUDA tests (`pytest -m cuda tests/test_cuda.py`)',
        '',
        '| test | outcome | seconds | message |',
        '|---|---|---|---|',
        *(f'| `{c["name"]}` | {c["outcome"]} | {c["seconds"]:.1f} | {c["message"].replace("|", "/")} |' for c in cases),
        '',
        '## Benchmark (`scripts/benchmark.py`)',
        '',
        *(s for s in (bench.read_text().splitlines() if bench.is_file() else ['Not run.']) if not s.startswith('{')),
    ]
    (out / 'REPORT.md').write_text('\n'.join(lines) + '\n')
    return ok


def build_parser() -> argparse.ArgumentParser:
    """The command line (plain argparse: aesop's packages may not be installed yet when it runs)."""
    prog = sys.argv[0] if sys.argv[0].endswith('.py') else 'scripts/gpu_check.py'
    parser = argparse.ArgumentParser(
        prog=prog,
        description=textwrap.fill(
            'The GPU check of aesop (docs/gpu.md): installs the wheels of .whl/, runs pytest -m cuda (the CUDA tests, '
            'an NCCL run and its resume) and the benchmark on CUDA, and writes REPORT.md, report.json and the logs '
            'to OUT_DIR. make gpu-check runs it.',
            100,
        ),
        epilog=f'examples:\n  python {prog}\n  python {prog} gpu_check_report',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('out', nargs='?', help='report folder (default: $OUT if set, else gpu_check_report/)')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out or os.environ.get('OUT') or 'gpu_check_report').resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f'[gpu-check] report in {out} (budget {BUDGET:.0f} s, {sys.executable})', flush=True)
    facts, parts = {}, []
    for name, part in (
        ('environment', environment),
        ('install', install),
        ('cuda-tests', cuda_tests),
        ('benchmark', benchmark),
    ):
        start, status = time.monotonic(), 'ok'
        try:
            if left() < 20:
                raise LookupError('no time left in the budget')
            note = part(out, facts)
        except LookupError as reason:  # a part that does not apply here
            status, note = SKIPPED, str(reason)
        except Exception as failure:  # noqa: BLE001  (a failed part is reported; the next one runs)
            status, note = 'FAILED', f'{type(failure).__name__}: {failure}'
        parts.append({'name': name, 'status': status, 'seconds': time.monotonic() - start, 'note': note})
        print(f'[gpu-check] {name}: {status} ({note}) in {parts[-1]["seconds"]:.0f} s', flush=True)
    ok = report(out, facts, parts)
    print((out / 'REPORT.md').read_text())
    print(f'[gpu-check] {"ok" if ok else "FAILED"}: {out / "REPORT.md"}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
