"""The package reads bottom-up: a module imports only its own layer or lower ones (lazy imports
included), and no import cycle exists. The layers are docs/architecture.md's."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'aesop'
LAYERS = [
    ('errors', 'utils', 'wandb_login', 'commands'),  # no project imports beyond errors; command lines
    ('schema', 'runlock', 'resume', 'weights', 'backbones', 'compat', 'distributed'),  # + process groups
    ('archs', 'data'),  # components: networks, datasets and degradations
    ('losses', 'metrics'),  # components built on ψ and backbones
    ('models',),  # basicsr models
    ('official',),  # the authors' release's names
    ('options',),  # the option pipeline: reading, translating, validating, a run's set-up and start-up checks
    ('pipeline', 'cli'),  # the train/test pipelines; one-line errors
    ('__init__', 'train', 'test', 'launch', 'inference', 'export', 'evaluation', 'figures'),  # tools
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def layer(module: str) -> int:
    parts = module.split('.')
    return LAYER['__init__' if len(parts) == 1 else parts[1]]


def imports(path: Path) -> set[str]:
    """Every ``aesop`` module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split('.')[0] == 'aesop'}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split('.')[0] == 'aesop':
            subs = {f'{node.module}.{a.name}' for a in node.names}  # `from aesop import archs` imports a module
            found |= {s for s in subs if (PACKAGE.parent / s.replace('.', '/')).exists()} or {node.module}
    return found


GRAPH = {module_name(p): imports(p) for p in PACKAGE.rglob('*.py')}


def test_every_module_has_a_layer():
    assert all(isinstance(layer(m), int) for m in GRAPH)


def test_imports_go_down_only():
    upward = [
        f'{m} ({layer(m)}) imports {t} ({layer(t)})' for m, ts in GRAPH.items() for t in ts if layer(t) > layer(m)
    ]
    assert not upward, '\n'.join(upward)


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH.get(module, ())):
            if target == module or (module == 'aesop' and target.startswith('aesop.')):
                continue
            assert state.get(target) != 1, ' -> '.join([*path, target])
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
