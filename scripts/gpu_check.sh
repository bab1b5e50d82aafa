#!/usr/bin/env bash
# shellcheck disable=SC2317  # the parts are functions called through `part NAME LIMIT FUNCTION`
# The GPU check of aesop (docs/gpu.md): environment, wheels, the CUDA tests, a short NCCL training run
# and its resume, the benchmark; a report in OUT_DIR (REPORT.md, report.json and at most 6 logs).
#
#   scripts/gpu_check.sh [OUT_DIR]          # default: $OUT if set, else gpu_check_report/
#
# Each part prints one line, `[gpu-check] <part>: ok|FAILED|skipped (...) in N s`, and the next part
# runs whatever the last one did; the exit status is 1 if any part failed. The parts share a time
# budget (GPU_CHECK_BUDGET seconds, default 450) so the whole check ends within about 8 minutes.
# Without a GPU the CUDA tests skip and the NCCL run and the benchmark are skipped (status 0);
# GPU_CHECK_DRY_RUN=1 runs those two on the CPU instead (gloo, `benchmark.py --tiny`), to check the
# script itself. PYTHON picks the interpreter (default: .venv/bin/python if there, else python3).
set -euo pipefail

OUT_DIR=${1:-${OUT:-gpu_check_report}} # relative to the working directory of the caller
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
BUDGET=${GPU_CHECK_BUDGET:-450}
SITE=${GPU_CHECK_SITE:-/tmp/aesop-site}
DRY_RUN=${GPU_CHECK_DRY_RUN:-}
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=python3; fi
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aesop-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
export PYTHONUNBUFFERED=1 AESOP_RANDOM_BACKBONES=1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
rm -f "$OUT_DIR"/{REPORT.md,report.json,environment.txt,pytest.txt,pytest.xml,nccl.txt,benchmark.txt,benchmark.json}
: >"$WORK/parts.tsv"
HAS_CUDA=0
FAILED=0

# ------------------------------------------------------------------------------------------ helpers

# part NAME LIMIT FUNCTION: run FUNCTION with PART_LIMIT = LIMIT seconds (less if the budget is short);
# it returns 0 (ok), 3 (skipped) or anything else (failed) and may set NOTE.
part() {
    local name=$1 limit=$2 fn=$3 t0 rc status left
    t0=$(date +%s)
    left=$((BUDGET - (t0 - START) - 15)) # 15 s kept for the report
    NOTE=''
    if ((left < 20)) && [[ $name != report ]]; then
        rc=3
        NOTE='no time left in the budget'
    else
        PART_LIMIT=$((limit < left || left < 20 ? limit : left))
        set +e
        "$fn"
        rc=$?
        set -e
    fi
    case $rc in
        0) status=ok ;;
        3) status=skipped ;;
        *)
            status=FAILED
            FAILED=1
            ;;
    esac
    local seconds=$(($(date +%s) - t0))
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$seconds" "${NOTE//$'\t'/ }" >>"$WORK/parts.tsv"
    echo "[gpu-check] $name: $status${NOTE:+ ($NOTE)} in $seconds s"
}

# limited SECONDS COMMAND...: COMMAND under `timeout`; status 124 when it ran out of time
limited() {
    local seconds=$1
    shift
    timeout --kill-after=10 "$seconds" "$@"
}

remaining() { echo $((BUDGET - ($(date +%s) - START) - 15)); }

# ------------------------------------------------------------------------------------------ a. environment

environment() {
    local log=$OUT_DIR/environment.txt
    {
        echo "# aesop GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo "host: $(uname -srm)"
        echo "repository: $REPO ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout'))"
        echo "python: $PYTHON"
    } >"$log"
    if ! limited "$PART_LIMIT" "$PYTHON" - >"$WORK/env.json" 2>>"$log" <<'PY'; then
import json
import platform
import sys

import torch



def ask(what):
    try:
        return what()
    except Exception as err:  # a field that cannot be read is reported, not fatal
        return f'? ({type(err).__name__}: {err})'


def nccl():
    version = torch.cuda.nccl.version()
    return '.'.join(map(str, version)) if isinstance(version, tuple) else str(version)


cuda = torch.cuda.is_available()
props = torch.cuda.get_device_properties(0) if cuda else None
print(json.dumps({
    'python': platform.python_version(),
    'executable': sys.executable,
    'torch': torch.__version__,
    'cuda': torch.version.cuda,
    'cudnn': ask(lambda: torch.backends.cudnn.version()),
    'cuda_available': cuda,
    'gpu_count': torch.cuda.device_count() if cuda else 0,
    'gpu': props.name if cuda else None,
    'gpu_memory_gib': round(props.total_memory / 2**30, 1) if cuda else None,
    'capability': ask(lambda: '.'.join(map(str, torch.cuda.get_device_capability(0)))) if cuda else None,
    'nccl': ask(nccl) if cuda else None,
}))
PY
        NOTE="$PYTHON cannot import torch (environment.txt)"
        echo '{}' >"$WORK/env.json"
        return 1
    fi
    cat "$WORK/env.json" >>"$log"
    HAS_CUDA=$("$PYTHON" -c 'import json, sys; print(int(json.load(sys.stdin)["cuda_available"]))' <"$WORK/env.json")
    if command -v nvidia-smi >/dev/null; then
        { echo; echo '$ nvidia-smi'; limited 30 nvidia-smi 2>&1 || true; } >>"$log"
    else
        echo 'nvidia-smi: not found' >>"$log"
    fi
    NOTE=$("$PYTHON" -c '
import json, sys
e = json.load(sys.stdin)
gpu = "%s, CUDA %s" % (e["gpu"], e["cuda"]) if e["cuda_available"] else "no CUDA device"
print("python %s, torch %s, %s" % (e["python"], e["torch"], gpu))' <"$WORK/env.json")
    return 0
}

# ------------------------------------------------------------------------------------------ b. install

install() {
    local log=$OUT_DIR/environment.txt wheels=() installed=''
    shopt -s nullglob
    wheels=(.whl/*.whl)
    shopt -u nullglob
    echo >>"$log"
    if ((${#wheels[@]})); then
        echo "\$ pip install --target $SITE ${wheels[*]}" >>"$log"
        if limited "$PART_LIMIT" "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target "$SITE" "${wheels[@]}" >>"$log" 2>&1; then
            export PYTHONPATH="$SITE:$PYTHONPATH"
            installed="${#wheels[@]} wheels from .whl/ into $SITE"
        else
            installed="the wheels of .whl/ do not install on this Python (environment.txt)"
        fi
    else
        installed='no .whl/ folder: nothing installed'
    fi
    # basicsr 1.4.2 imports distutils, gone from Python 3.12 unless setuptools' shim is active
    if ! "$PYTHON" -c 'import distutils.version' >/dev/null 2>&1; then
        mkdir -p "$SITE/distutils"
        : >"$SITE/distutils/__init__.py"
        cat >"$SITE/distutils/version.py" <<'PY'
"""The LooseVersion basicsr 1.4.2 imports (written by scripts/gpu_check.sh: Python >= 3.12 has no distutils)."""
try:
    from setuptools._distutils.version import LooseVersion, StrictVersion  # noqa: F401
except ImportError:
    from packaging.version import Version as LooseVersion  # noqa: F401
    from packaging.version import Version as StrictVersion  # noqa: F401
PY
        [[ :$PYTHONPATH: == *:$SITE:* ]] || export PYTHONPATH="$SITE:$PYTHONPATH"
        installed+='; a distutils.version shim for basicsr'
    fi
    echo "PYTHONPATH=$PYTHONPATH" >>"$log"
    if ! limited 120 "$PYTHON" -c 'import aesop, basicsr, lpips' >>"$log" 2>&1; then
        NOTE="$installed; import aesop, basicsr, lpips failed (environment.txt)"
        return 1
    fi
    "$PYTHON" - >>"$log" 2>&1 <<'PY' || true
import importlib.metadata as metadata

names = ['basicsr', 'lpips', 'DISTS-pytorch', 'spandrel', 'pydantic', 'pydantic-core', 'numpy', 'scipy',
         'opencv-python-headless', 'opencv-python', 'scikit-image', 'torchvision', 'triton', 'pytest']
for name in names:
    try:
        print(f'{name} {metadata.version(name)}')
    except metadata.PackageNotFoundError:
        print(f'{name} -')
PY
    NOTE="$installed; import aesop, basicsr, lpips: ok"
    return 0
}

# ------------------------------------------------------------------------------------------ c. CUDA tests

cuda_tests() {
    local log=$OUT_DIR/pytest.txt args rc
    args=(-m pytest -v -m cuda tests/test_cuda.py -p no:cacheprovider -rA --durations=15
        --junitxml="$OUT_DIR/pytest.xml")
    # pytest-timeout stops a hanging test and goes on (the part's own limit would lose the XML)
    if "$PYTHON" -c 'import pytest_timeout' >/dev/null 2>&1; then args+=(--timeout=$((PART_LIMIT / 2))); fi
    limited "$PART_LIMIT" "$PYTHON" "${args[@]}" >"$log" 2>&1
    rc=$?
    NOTE=$(grep -E '^=* ?[0-9]+ (passed|failed|skipped|errors?|deselected)' "$log" | tail -n 1 | sed 's/=//g; s/^ *//; s/ *$//')
    if ((rc == 124)); then NOTE="timed out after $PART_LIMIT s; ${NOTE:-no summary}"; fi
    ((HAS_CUDA)) || NOTE="${NOTE:-no summary}; no GPU: CUDA tests skip"
    return "$rc"
}

# ------------------------------------------------------------------------------------------ d. NCCL run

nccl() {
    local log=$OUT_DIR/nccl.txt root=$WORK/nccl backend=nccl num_gpu=1 half rc
    if ! ((HAS_CUDA)); then
        if [[ -z $DRY_RUN ]]; then
            NOTE='no GPU'
            return 3
        fi
        backend=gloo
        num_gpu=0
    fi
    mkdir -p "$root"
    echo "# a short AESOP GAN run under torchrun (1 process, $backend), then --auto_resume" >"$log"
    if ! limited 120 "$PYTHON" - "$root" "$REPO" "$backend" "$num_gpu" >>"$log" 2>&1 <<'PY'; then
"""Tiny dataset (skimage photos), a random tiny ψ and the demo's AESOP option file, made tiny: 4 iterations, then 8."""
import sys
from pathlib import Path

import torch
import yaml

import aesop  # noqa: F401  (before basicsr)
from aesop.data import make_demo_dataset
from basicsr.archs import build_network

root, repo, backend, num_gpu = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
data = make_demo_dataset(root / 'data', train=('astronaut', 'chelsea'), val=('coffee',), sub_size=128, val_crop=64)
g = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 1, 'num_grow_ch': 8}
psi = {'type': 'AesopAutoEncoder', 'scale': 4, 'decoder': dict(g), 'num_block': 1}
torch.manual_seed(0)
torch.save({'params_ema': build_network(dict(psi)).state_dict()}, root / 'psi.pth')
opt = yaml.safe_load((repo / 'options' / 'demo' / 'train_aesop.yml').read_text())
opt.update(name='gpu_check_nccl', num_gpu=num_gpu, dist_params={'backend': backend}, network_g=g)
opt['network_d'] = {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 8, 'input_size': 128}
for phase, split in (('train', 'train'), ('val', 'val')):
    opt['datasets'][phase].update(dataroot_gt=str(data / split / 'HR'), dataroot_lq=str(data / split / 'LR_bicubic' / 'X4'))
if num_gpu:
    opt['datasets']['train'].update(prefetch_mode='cuda', pin_memory=True)
opt['path']['pretrain_network_g'] = None
opt['train']['aesop_opt'].update(autoencoder=psi, pretrained=str(root / 'psi.pth'))
opt['train']['perceptual_opt']['layer_weights'] = {'conv1_2': 0.1, 'conv2_2': 1.0}  # a truncated VGG19: quick
opt['val'].update(val_freq=4, save_img=False)
opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
for total_iter, name in ((4, 'first.yml'), (8, 'resumed.yml')):
    opt['train']['total_iter'] = total_iter
    (root / name).write_text(yaml.safe_dump(opt, sort_keys=False))
print(f'options: {root / "first.yml"} (4 iterations), {root / "resumed.yml"} (8)')
PY
        NOTE='could not make the data and options (nccl.txt)'
        return 1
    fi
    half=$((PART_LIMIT / 2))
    local launch=("$PYTHON" -m aesop.launch --nproc_per_node=1 --rdzv_backend=c10d --rdzv_endpoint=localhost:0
        "$REPO/aesop/train.py" --launcher pytorch)
    echo "\$ ${launch[*]} -opt first.yml" >>"$log"
    (cd "$root" && limited "$half" env AESOP_ROOT="$root" "${launch[@]}" -opt first.yml) >>"$log" 2>&1
    rc=$?
    if ((rc)); then
        NOTE="the first run failed (status $rc, nccl.txt)"
        return 1
    fi
    echo "\$ ${launch[*]} -opt resumed.yml --auto_resume" >>"$log"
    (cd "$root" && limited "$half" env AESOP_ROOT="$root" "${launch[@]}" -opt resumed.yml --auto_resume) >>"$log" 2>&1
    rc=$?
    if ((rc)); then
        NOTE="the resumed run failed (status $rc, nccl.txt)"
        return 1
    fi
    local exp=$root/experiments/gpu_check_nccl missing=()
    grep -q 'Resuming training from epoch: [0-9]*, iter: 4\.' "$log" || missing+=('resume from iteration 4')
    grep -q 'End of training' "$log" || missing+=('End of training')
    [[ -f $exp/models/net_g_8.pth && -f $exp/training_states/8.state ]] || missing+=('iteration 8 checkpoint')
    grep -q "backend: $backend" "$log" || missing+=("backend $backend in the options")
    if ((num_gpu)); then grep -q 'Use cuda prefetch dataloader' "$log" || missing+=('the CUDA prefetcher'); fi
    {
        echo
        echo '# files'
        ls -l "$exp/models" "$exp/training_states" 2>&1
    } >>"$log"
    if ((${#missing[@]})); then
        NOTE="not found: $(
            IFS=,
            echo "${missing[*]}"
        ) (nccl.txt)"
        return 1
    fi
    NOTE="$backend: iterations 1-4, resumed at 4, reached 8"
    ((num_gpu == 0)) || NOTE+=', CUDA prefetcher'
    return 0
}

# ------------------------------------------------------------------------------------------ e. benchmark

benchmark() {
    local log=$OUT_DIR/benchmark.txt runs=() i rc=0 done_runs=0 args help
    if ((HAS_CUDA)); then
        help=$("$PYTHON" scripts/benchmark.py --help 2>&1 || true)
        args='--device cuda --batch 16 --patch 128 --steps 5' # the paper's 16 per GPU, patch 128
        [[ $help == *--json* ]] && args+=' --json'
        runs+=("$args")
        if [[ $help == *--amp* && $help == *--channels-last* ]]; then runs+=("$args --amp bf16 --channels-last"); fi
    elif [[ -n $DRY_RUN ]]; then
        runs+=('--tiny --json')
    else
        NOTE='no GPU'
        return 3
    fi
    : >"$log"
    local deadline=$(($(date +%s) + PART_LIMIT))
    for i in "${!runs[@]}"; do
        local limit=$((deadline - $(date +%s))) left
        left=$(remaining)
        ((limit < left)) || limit=$left
        if ((i == 0 && ${#runs[@]} > 1 && limit > 150)); then limit=150; fi # leave time for the next run
        if ((i > 0 && limit < 60)); then
            NOTE+="; skipped '${runs[$i]}' (budget)"
            continue
        fi
        echo "\$ python scripts/benchmark.py ${runs[$i]}" >>"$log"
        # shellcheck disable=SC2086  # the flags are words
        limited "$limit" "$PYTHON" scripts/benchmark.py ${runs[$i]} >"$WORK/bench$i.out" 2>"$WORK/bench$i.err"
        local r=$?
        cat "$WORK/bench$i.out" >>"$log"
        { echo '--- stderr'; cat "$WORK/bench$i.err"; echo; } >>"$log"
        printf '%s\n' "${runs[$i]}" >"$WORK/bench$i.args"
        if ((r)); then
            rc=1
            NOTE+="; '${runs[$i]}' failed (status $r$( ((r == 124)) && echo ", timed out after $limit s"))"
        else
            done_runs=$((done_runs + 1))
        fi
    done
    "$PYTHON" - "$WORK" "$OUT_DIR/benchmark.json" <<'PY' || true
"""benchmark.json: one entry per run, its flags and the JSON its last line printed (if any)."""
import json
import sys
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
runs = []
for args in sorted(work.glob('bench*.args')):
    lines = args.with_suffix('.out').read_text().strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    runs.append({'run': int(args.stem.removeprefix('bench')), 'args': args.read_text().strip(), 'result': result})
out.write_text(json.dumps(runs, indent=1) + '\n')
PY
    NOTE="$done_runs of ${#runs[@]} runs ok${NOTE}"
    return "$rc"
}

# ------------------------------------------------------------------------------------------ f. report

report() {
    limited "$PART_LIMIT" "$PYTHON" - "$OUT_DIR" "$WORK" "$BUDGET" <<'PY'
"""REPORT.md and report.json from the parts' results, the environment, pytest's JUnit XML and the benchmark."""
import datetime
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

out, work, budget = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
env = json.loads((work / 'env.json').read_text() or '{}') if (work / 'env.json').is_file() else {}
parts = []
for line in (work / 'parts.tsv').read_text().splitlines():
    name, status, seconds, note = (line.split('\t') + [''] * 4)[:4]
    parts.append({'name': name, 'status': status, 'seconds': int(seconds), 'note': note})

tests = {'tests': 0, 'passed': 0, 'failed': 0, 'errors': 0, 'skipped': 0, 'cases': []}
if (out / 'pytest.xml').is_file():
    try:
        for case in ET.parse(out / 'pytest.xml').getroot().iter('testcase'):
            outcome, message = 'passed', ''
            for child in case:
                if child.tag in ('failure', 'error', 'skipped'):
                    outcome = {'failure': 'failed', 'error': 'errors'}.get(child.tag, child.tag)
                    message = (child.get('message') or '').splitlines()[0][:300] if child.get('message') else ''
                    break
            tests['tests'] += 1
            tests[outcome] += 1
            name = case.get('name', '')
            tests['cases'].append({'name': name, 'outcome': outcome, 'seconds': float(case.get('time') or 0),
                                   'message': message})
    except ET.ParseError as err:
        tests['parse_error'] = str(err)
bench = json.loads((out / 'benchmark.json').read_text()) if (out / 'benchmark.json').is_file() else []

now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
ok = all(p['status'] != 'FAILED' for p in parts)
summary = {'date': now, 'ok': ok, 'budget_s': budget, 'environment': env, 'parts': parts, 'pytest': tests,
           'benchmark': bench}
(out / 'report.json').write_text(json.dumps(summary, indent=1) + '\n')

gpu = env.get('gpu') or 'no CUDA device'
lines = [
    '# aesop GPU check',
    '',
    f'- date: {now}',
    f'- GPU: {gpu}' + (f' ({env.get("gpu_memory_gib")} GiB, compute capability {env.get("capability")})' if env.get('gpu') else ''),
    f'- torch {env.get("torch", "?")}, CUDA {env.get("cuda")}, cuDNN {env.get("cudnn")}, NCCL {env.get("nccl")}, '
    f'Python {env.get("python", "?")}',
    f'- result: **{"ok" if ok else "FAILED"}** (parts that failed: '
    f'{", ".join(p["name"] for p in parts if p["status"] == "FAILED") or "none"})',
    '',
    '| part | status | seconds | details |',
    '|---|---|---|---|',
]
lines += [f'| {p["name"]} | {p["status"]} | {p["seconds"]} | {p["note"].replace("|", "/")} |' for p in parts]
lines += ['', '## CUDA tests (`pytest -m cuda tests/test_cuda.py`)', '']
if tests['tests']:
    counts = ', '.join(f'{tests[k]} {k}' for k in ('passed', 'failed', 'errors', 'skipped') if tests[k])
    lines += [f'{tests["tests"]} tests: {counts}.', '', '| test | outcome | seconds | message |', '|---|---|---|---|']
    lines += [
        f'| `{c["name"]}` | {c["outcome"]} | {c["seconds"]:.1f} | {c["message"].replace("|", "/")} |'
        for c in tests['cases']
    ]
else:
    lines += ['No test results (see pytest.txt).']
lines += ['', '## Benchmark (`scripts/benchmark.py`)', '']
if bench:
    for run in bench:
        stdout = work / f'bench{run["run"]}.out'
        text = stdout.read_text() if stdout.is_file() else ''
        body = [line for line in text.splitlines() if not line.startswith('{')]
        lines += [f'### `benchmark.py {run["args"]}`', '', *body, '']
else:
    lines += ['Not run (see the parts above).']
lines += ['', 'Files: ' + ', '.join(sorted(p.name for p in out.iterdir() if p.is_file()) + ['REPORT.md'])]
(out / 'REPORT.md').write_text('\n'.join(lines).rstrip() + '\n')
PY
}

# ------------------------------------------------------------------------------------------ main

echo "[gpu-check] report in $OUT_DIR (budget $BUDGET s, $PYTHON)"
part environment 60 environment
part install 120 install
part cuda-tests 270 cuda_tests
part nccl 150 nccl
part benchmark 240 benchmark
part report 30 report
if [[ -f $OUT_DIR/REPORT.md ]]; then
    echo
    cat "$OUT_DIR/REPORT.md"
    echo
fi
echo "[gpu-check] $( ((FAILED)) && echo FAILED || echo ok): $OUT_DIR/REPORT.md"
exit "$FAILED"
