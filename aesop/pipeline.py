"""The train and test pipelines: basicsr's, in an order where a failed start-up leaves nothing behind.

basicsr 1.4.2's ``train_pipeline`` makes the experiment folder (renaming an existing one to
``<name>_archived_<time>``), the ``tb_logger/<name>`` folder and the log file first, and only then
builds the dataloaders and the model. An error met while building (weights that do not fit
``pretrain_network_g``, a missing VGG19 for the perceptual loss, an option the model refuses) left
those folders, archived the last run, and came after the ~200-line network description.

Here a run starts in this order: the command line (:func:`aesop.commands.pipeline_parser`), the options read
and checked (:func:`aesop.options.load_options`), the experiment's lock (training), the resume state, the
dataloaders, the model (its weights loaded, its losses and their backbones built), and only then the folders,
the option file (a copy as written, and beside it the options as the run resolved them: ``<file>.resolved.yml``)
and the log file. What the ``basicsr`` logger says meanwhile (environment, options, datasets, networks) is held
(:class:`StartUpLog`): once the folders exist it goes to the log file and to the console, as basicsr
printed it; when the start-up fails, only its warnings reach the console, before the one-line error,
the lock is given up (:func:`aesop.runlock.release_experiment`) and no folder is made or renamed. Under
torchrun every rank builds the same way and fails alike; rank 0 alone makes folders and writes the log.

The training loop is basicsr's, except that it stops at ``train.total_iter`` (basicsr's went one
iteration past it for each epoch it began after the last one, and its final validation saved and
logged that iteration: ``coffee_82.png`` for ``total_iter: 80``), the final validation is skipped
when the loop validated at ``total_iter`` already, and the eta counts the iterations left (basicsr's
was one short: ``-1 day, 23:59:58`` at the last one).
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from os import path as osp
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.models import build_model
from basicsr.models.sr_model import SRModel
from basicsr.train import init_tb_loggers
from basicsr.utils import AvgTimer, get_env_info, get_root_logger, get_time_str, make_exp_dirs, mkdir_and_rename
from basicsr.utils import MessageLogger as _MessageLogger
from basicsr.utils.options import copy_opt_file, dict2str

from aesop.commands import pipeline_parser
from aesop.errors import AesopError
from aesop.options import SAVED_NETWORKS, OptionDumper, load_options
from aesop.resume import ResumableSampler, StopSignals, preserved_random_state, set_random_state
from aesop.runlock import exit_with_parent, hold_experiment, release_experiment, remove_stale_temporaries
from aesop.schema import Paths
from aesop.weights import abbreviated, atomic_write, read_checkpoint, saved_network

__all__ = [
    'StartUpLog',
    'check_resume',
    'check_state',
    'load_resume_state',
    'run_options',
    'test_pipeline',
    'train_pipeline',
]

# Training states hold basicsr's MultiStepRestartLR, whose milestones are a Counter.
torch.serialization.add_safe_globals([collections.Counter])

LOG_FORMAT = '%(asctime)s %(levelname)s: %(message)s'  # basicsr's, for the console and the log file


class StartUpLog(logging.Filter):
    """Holds the records of the ``basicsr`` logger while a run starts, until its log file exists.

    Made as basicsr's ``get_root_logger`` makes the logger (a console handler once per process, INFO on
    rank 0, ERROR on the others), with a filter that keeps every record instead of letting it through.
    :meth:`release` opens :attr:`log_file` (rank 0) and logs the held records to it and to the console;
    :meth:`drop` (a failed start-up) lets through only the warnings and errors, so that the error is not
    buried under the options and the network descriptions.
    """

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.logger = get_root_logger()
        for handler in [h for h in self.logger.handlers if isinstance(h, logging.FileHandler)]:
            self.logger.removeHandler(handler)  # an earlier run's file, in the same process (tests)
            handler.close()
        if opt['rank'] == 0:
            self.logger.setLevel(logging.INFO)
        self.rank = opt['rank']
        self.log_file: str | None = None  # set once the run's folders exist
        self.records: list[logging.LogRecord] = []
        self.logger.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False

    def release(self) -> None:
        """Stop holding: log to :attr:`log_file` from now on (rank 0; basicsr's format), the held records first."""
        self.logger.removeFilter(self)
        if self.rank == 0 and self.log_file is not None:
            handler = logging.FileHandler(self.log_file, 'w')
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
            handler.setLevel(logging.INFO)
            self.logger.addHandler(handler)
        self._log(logging.NOTSET)

    def drop(self) -> None:
        """Stop holding, letting through only the held warnings and errors (there is no log file)."""
        self.logger.removeFilter(self)
        self._log(logging.WARNING)

    def _log(self, level: int) -> None:
        records, self.records = self.records, []
        for record in records:
            if record.levelno >= level:
                self.logger.handle(record)


@contextlib.contextmanager
def starting(opt: dict) -> Iterator[StartUpLog]:
    """The start-up of a run: its log held (:class:`StartUpLog`) until the block ends, having made the run's
    folders and set the log file.

    On an error the held warnings are shown, a training run gives its experiment's lock up and no log file
    is opened; the error goes on to :func:`aesop.cli.cli_main`.
    """
    log = StartUpLog(opt)
    try:
        yield log
    except BaseException:
        log.drop()
        if opt['is_train']:
            release_experiment(opt['path']['experiments_root'])
        raise
    log.release()


def run_options(stage: str, root_path: str | Path, argv: Sequence[str] | None = None) -> tuple[dict, str]:
    """The options of a ``train`` or ``test`` run from its command line (``argv``, default ``sys.argv[1:]``; basicsr's
    flags, :func:`aesop.commands.pipeline_parser`) and the option file's path: :func:`aesop.options.load_options`,
    then the run's claims: a torchrun worker stops when its agent dies, the output folder must be writable, and
    a training run holds its experiment folder (:mod:`aesop.runlock`)."""
    args = pipeline_parser(stage).parse_args(sys.argv[1:] if argv is None else argv)
    is_train = stage == 'train'
    opt = load_options(
        args.opt,
        is_train=is_train,
        overrides=args.force_yml or (),
        root_path=root_path,
        launcher=args.launcher,
        auto_resume=args.auto_resume,
        debug=args.debug,
    )
    if opt['dist'] and 'TORCHELASTIC_RUN_ID' in os.environ:
        exit_with_parent()  # a killed torchrun agent must not leave its workers training
    where = Path(root_path) / ('experiments' if is_train else 'results')
    writable = where if where.exists() else Path(root_path)
    if not os.access(writable, os.W_OK):  # every rank: they all stop, none waits for rank 0
        raise AesopError(f'cannot write to {writable}: run from a writable folder or set AESOP_ROOT to one')
    if is_train:
        _hold_experiment(opt)
    return opt, args.opt


def train_pipeline(root_path: str, argv: Sequence[str] | None = None) -> int:
    """basicsr's ``train_pipeline`` in the order above: nothing is made on disk until the model is built. Returns the
    exit status: 0, or ``128 + signal`` after a stop asked for by a signal (:class:`aesop.resume.StopSignals`)."""
    opt, option_file = run_options('train', root_path, argv)  # options checked, experiment locked
    opt['root_path'] = root_path
    torch.backends.cudnn.benchmark = True
    logger = get_root_logger()
    with starting(opt) as start_up:
        resume_state = load_resume_state(opt)
        logger.info(get_env_info())
        logger.info(dict2str(opt))
        train_loader, train_sampler, val_loaders = create_train_val_dataloader(opt, logger)
        model = build_model(opt)  # weights loaded, losses (and their VGG) built
        if resume_state:
            model.resume_training(resume_state)  # optimisers and schedulers
            logger.info(f'Resuming training from epoch: {resume_state["epoch"]}, iter: {resume_state["iter"]}.')
        prefetcher = _prefetcher(opt, train_loader)
        if resume_state is None:  # a resumed run writes into its folders
            _make_exp_dirs(opt)  # rank 0; an earlier run's folder is archived
            if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name'] and opt['rank'] == 0:
                mkdir_and_rename(osp.join(root_path, 'tb_logger', opt['name']))
        _wait_for_folders(opt)
        _keep_options(opt, option_file, opt['path']['experiments_root'])
        start_up.log_file = osp.join(opt['path']['log'], f'train_{opt["name"]}_{get_time_str()}.log')
    tb_logger = init_tb_loggers(opt)
    try:
        stopped_by = train(
            opt,
            model,
            prefetcher=prefetcher,
            sampler=train_sampler,
            val_loaders=val_loaders,
            tb_logger=tb_logger,
            resume_state=resume_state,
        )
    finally:
        if tb_logger:
            tb_logger.close()
    return 128 + stopped_by if stopped_by else 0


def test_pipeline(root_path: str, argv: Sequence[str] | None = None) -> None:
    """basicsr's ``test_pipeline``, with ``results/<name>`` made (an earlier one archived) once the model is built."""
    opt, option_file = run_options('test', root_path, argv)
    torch.backends.cudnn.benchmark = True
    logger = get_root_logger()
    with starting(opt) as start_up:
        logger.info(get_env_info())
        logger.info(dict2str(opt))
        test_loaders = []
        for _, dataset_opt in sorted(opt['datasets'].items()):
            test_set = build_dataset(dataset_opt)
            test_loader = build_dataloader(
                test_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'], sampler=None, seed=opt['manual_seed']
            )
            logger.info(f'Number of test images in {dataset_opt["name"]}: {len(test_set)}')
            test_loaders.append(test_loader)
        model = build_model(opt)
        _make_exp_dirs(opt)  # rank 0; an earlier results folder is archived
        _wait_for_folders(opt)
        _keep_options(opt, option_file, opt['path']['results_root'])
        start_up.log_file = osp.join(opt['path']['log'], f'test_{opt["name"]}_{get_time_str()}.log')
    for test_loader in test_loaders:
        logger.info(f'Testing {test_loader.dataset.opt["name"]}...')
        model.validation(test_loader, current_iter=opt['name'], tb_logger=None, save_img=opt['val']['save_img'])


def create_train_val_dataloader(opt: dict, logger: logging.Logger) -> tuple:
    """basicsr's: ``(train_loader, train_sampler, val_loaders)``, with a :class:`aesop.resume.ResumableSampler` (a
    resumed run starts at the batch the stopped one would have drawn next)."""
    train_loader = train_sampler = None
    val_loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        if phase == 'train':
            ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
            train_set = build_dataset(dataset_opt)
            train_sampler = ResumableSampler(train_set, opt['world_size'], opt['rank'], ratio)
            train_loader = build_dataloader(
                train_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'], sampler=train_sampler,
                seed=opt['manual_seed'],
            )  # fmt: skip
            per_epoch = math.ceil(len(train_set) * ratio / (dataset_opt['batch_size_per_gpu'] * opt['world_size']))
            total_iters = int(opt['train']['total_iter'])
            logger.info(
                'Training statistics:'
                f'\n\tNumber of train images: {len(train_set)}'
                f'\n\tDataset enlarge ratio: {ratio}'
                f'\n\tBatch size per gpu: {dataset_opt["batch_size_per_gpu"]}'
                f'\n\tWorld size (gpu number): {opt["world_size"]}'
                f'\n\tRequire iter number per epoch: {per_epoch}'
                f'\n\tTotal epochs: {math.ceil(total_iters / per_epoch)}; iters: {total_iters}.'
            )
        elif phase.split('_')[0] == 'val':
            val_set = build_dataset(dataset_opt)
            val_loaders.append(
                build_dataloader(
                    val_set,
                    dataset_opt,
                    num_gpu=opt['num_gpu'],
                    dist=opt['dist'],
                    sampler=None,
                    seed=opt['manual_seed'],
                )  # fmt: skip
            )
            logger.info(f'Number of val images/folders in {dataset_opt["name"]}: {len(val_set)}')
        else:  # basicsr: "Dataset phase … is not recognized"
            raise AesopError(f'datasets.{phase}: a training run reads datasets.train and datasets.val* only')
    return train_loader, train_sampler, val_loaders


class MessageLogger(_MessageLogger):
    """basicsr's, with an eta of the iterations left: basicsr's counted ``total_iter − iter − 1`` of them, one
    short, so that the last iteration's eta was negative (``-1 day, 23:59:58``); it is 0 there now."""

    def __init__(self, opt: dict, start_iter: int = 1, tb_logger=None) -> None:
        super().__init__(opt, start_iter, tb_logger)
        self.max_iters = opt['train']['total_iter'] + 1  # basicsr's eta: (max_iters − iter − 1) × time per iteration


def train(
    opt: dict,
    model,
    *,
    prefetcher,
    sampler: ResumableSampler,
    val_loaders: list,
    tb_logger,
    resume_state: dict | None = None,
) -> int:
    """basicsr's training loop from the start (or ``resume_state``'s iteration) to ``train.total_iter`` (no
    iteration past it), then the latest model saved and a last validation at ``total_iter`` unless the loop just
    validated there. Returns 0, or the number of the signal that stopped it (:class:`aesop.resume.StopSignals`):
    then the networks and a training state were saved at the iteration it stopped after.

    A resumed run starts its first epoch at the batch the stopped one would have drawn next, with the random
    streams the stopped one had there (both in the training state); validation draws on copies of them.

    Args:
        opt: the run's options.
        model: the built model (resumed when ``resume_state`` is given).
        prefetcher: basicsr's CPU or CUDA prefetcher over the training dataloader.
        sampler: its sampler (reseeded each epoch).
        val_loaders: the validation dataloaders.
        tb_logger: the tensorboard writer, or ``None``.
        resume_state: the training state resumed from, or ``None``.
    """
    logger = get_root_logger()
    resume_state = resume_state or {}
    total_iters, current_iter = int(opt['train']['total_iter']), resume_state.get('iter', 0)
    epoch = resume_state.get('epoch', 0)
    msg_logger = MessageLogger(opt, current_iter, tb_logger)
    val_opt = opt.get('val')
    if val_opt is not None and len(val_loaders) > 1 and not isinstance(model, SRModel):
        logger.warning('Multiple validation datasets are *only* supported by SRModel.')
    logger.info(f'Start training from epoch: {epoch}, iter: {current_iter}')
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    start_time = time.time()
    validated_at = None
    batch_size = opt['datasets']['train']['batch_size_per_gpu']
    batch = resume_state.get('batch_in_epoch', 0)  # batches of `epoch` the stopped run trained on
    saved = resume_state.get('random') or []  # every rank's random streams, by rank
    streams = saved[opt['rank']] if saved and len(saved) == opt['world_size'] else None
    if saved and streams is None:
        logger.warning(
            f'the training state holds the random streams of {len(saved)} process(es), this run has '
            f"{opt['world_size']}: they start afresh (the data order and crops differ from an uninterrupted run's)"
        )
    with StopSignals() as signals:
        while current_iter < total_iters:
            sampler.set_epoch(epoch)
            sampler.start_at(batch * batch_size)
            prefetcher.reset()
            if streams is not None:  # after the dataloader drew its seed, as the stopped run's had
                set_random_state(streams)
                streams = None
            train_data = prefetcher.next()
            if train_data is None:
                if batch:  # the stopped run had trained on this epoch's last batch
                    epoch, batch = epoch + 1, 0
                    continue
                raise AesopError(f'datasets.train gave no batch in epoch {epoch}: training cannot go on')
            while train_data is not None:
                data_timer.record()
                current_iter, batch = current_iter + 1, batch + 1
                model.update_learning_rate(current_iter, warmup_iter=opt['train'].get('warmup_iter', -1))
                model.feed_data(train_data)
                model.optimize_parameters(current_iter)
                iter_timer.record()
                model.batch_in_epoch = batch
                if current_iter == 1:
                    msg_logger.reset_start_time()  # a more accurate eta (not on resume)
                if current_iter % opt['logger']['print_freq'] == 0:
                    log_vars = {'epoch': epoch, 'iter': current_iter, 'lrs': model.get_current_learning_rate()}
                    log_vars.update({'time': iter_timer.get_avg_time(), 'data_time': data_timer.get_avg_time()})
                    log_vars.update(model.get_current_log())
                    msg_logger(log_vars)
                saved = current_iter % opt['logger']['save_checkpoint_freq'] == 0
                if saved:
                    logger.info('Saving models and training states.')
                    model.save(epoch, current_iter)
                if val_opt is not None and current_iter % val_opt['val_freq'] == 0:
                    with preserved_random_state():
                        for val_loader in val_loaders:
                            model.validation(val_loader, current_iter, tb_logger, val_opt['save_img'])
                    validated_at = current_iter
                stop = signals.agreed(model.device)
                if stop:
                    if not saved:
                        model.save(epoch, current_iter)
                    logger.warning(
                        f'{signal.Signals(stop).name}: stopped after iteration {current_iter}, saved in '
                        f'{opt["path"]["models"]} and training_states/{current_iter}.state; --auto_resume goes on '
                        'from there'
                    )
                    return stop
                if current_iter == total_iters:
                    break  # no batch drawn for an iteration that will not run
                data_timer.start()
                iter_timer.start()
                train_data = prefetcher.next()
            epoch, batch = epoch + 1, 0
    logger.info(f'End of training. Time consumed: {datetime.timedelta(seconds=int(time.time() - start_time))}')
    logger.info('Save the latest model.')
    model.save(epoch=-1, current_iter=-1)  # -1: the latest
    if val_opt is not None and validated_at != current_iter:
        for val_loader in val_loaders:
            model.validation(val_loader, current_iter, tb_logger, val_opt['save_img'])
    return 0


def _wait_for_folders(opt: dict) -> None:
    """Under torchrun, every rank waits until rank 0 has made (and archived) the run's folders: no rank writes an
    image or a checkpoint into a folder that rank 0 is about to rename."""
    if opt['dist']:
        dist.barrier()


def _prefetcher(opt: dict, train_loader):
    """basicsr's prefetcher of ``datasets.train.prefetch_mode`` (``cuda`` needs ``pin_memory: true``)."""
    dataset_opt = opt['datasets']['train']
    if dataset_opt.get('prefetch_mode') != 'cuda':
        return CPUPrefetcher(train_loader)
    if dataset_opt.get('pin_memory') is not True:
        raise AesopError('datasets.train.prefetch_mode cuda needs datasets.train.pin_memory: true')
    get_root_logger().info('Use cuda prefetch dataloader')
    return CUDAPrefetcher(train_loader, opt)


def _keep_options(opt: dict, option_file: str, folder: str) -> None:
    """Rank 0 keeps the option file in the run's folder as written (basicsr's copy, the command in its first line)
    and, beside it, the options as the run resolved them (``<file>.resolved.yml``: defaults, overrides, paths)."""
    copy_opt_file(option_file, folder)
    if opt['rank'] == 0:
        resolved = Path(folder) / f'{Path(option_file).stem}.resolved.yml'
        atomic_write(resolved, yaml.dump(opt, Dumper=OptionDumper, sort_keys=False, allow_unicode=True).encode())


def _hold_experiment(opt: dict) -> None:
    """Rank 0 takes the experiment's lock; under DDP every rank learns whether it could."""
    message = None
    if opt['rank'] == 0:
        try:
            hold_experiment(opt['path']['experiments_root'])
        except AesopError as err:
            message = str(err)
        else:
            remove_stale_temporaries(opt['path']['experiments_root'])
    if opt['dist']:
        shared = [message]
        dist.broadcast_object_list(shared, src=0)
        message = shared[0]
    if message:
        raise AesopError(message)


def load_resume_state(opt: dict) -> dict | None:
    """The training state to resume from (basicsr's ``load_resume_state``, on CPU too): ``path.resume_state``, or
    with ``--auto_resume`` the newest readable state in the experiment's ``training_states`` folder (basicsr's
    looked under the working directory), a corrupt newest one (or one that is no training state: :func:`check_state`)
    skipped with a warning; loaded with ``weights_only=True``. ``path.resume_state`` naming a file that is no training
    state (a network's weights) is one line, and so is a state another experiment wrote (its name is in the state,
    :meth:`aesop.models.base.AesopModel.extra_training_state`)."""
    if opt['auto_resume']:
        state_dir = Path(opt['path']['training_states'])
        states = sorted(state_dir.glob('*.state'), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
        for path in reversed(states):
            try:
                state = check_state(read_checkpoint(path, option='--auto_resume'), path, option='--auto_resume')
            except AesopError as err:
                get_root_logger().warning(f'skipping training state: {err}')
                print(f'aesop: warning: skipping training state: {err}', file=sys.stderr)
                continue
            opt['path']['resume_state'] = str(path)
            break
        else:
            if states:  # restarting from iteration 0 would archive the run's folder: say so instead
                raise AesopError(
                    f'--auto_resume: no readable training state in {state_dir} (skipped, all truncated, corrupt or '
                    f'not states: {", ".join(p.name for p in states)}); remove them to start over, or drop '
                    '--auto_resume'
                )
            return None
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
        state = check_state(read_checkpoint(path, option='path.resume_state'), path, option='path.resume_state')
    else:
        return None
    recorded, name = state.get('experiment'), opt.get('name')
    if recorded is not None and name is not None and recorded != name:  # a state of an older version has none
        raise AesopError(
            f'training state {opt["path"]["resume_state"]} belongs to experiment {recorded!r}, not to this one '
            f'({name!r}): resume {recorded!r} under its own name (its networks are in its models folder), or remove '
            'the state from this experiment'
        )
    check_resume(opt, state['iter'])
    return state


TRAINING_STATE_KEYS = ('epoch', 'iter', 'optimizers', 'schedulers')  # what basicsr's save_training_state writes


def check_state(state: object, path: str | Path, *, option: str) -> dict:
    """``state`` (read from ``path``, named by ``option``) if it is a training state (basicsr's keys,
    :data:`TRAINING_STATE_KEYS`); else one :class:`AesopError` line saying what it is (a network's weights: what
    ``path.pretrain_network_*`` takes)."""
    if isinstance(state, dict) and all(key in state for key in TRAINING_STATE_KEYS):
        return state
    where = f'{path} (option {option})'
    if not isinstance(state, dict):
        raise AesopError(f"{where} is not a training state: it holds a {type(state).__name__}, not basicsr's mapping")
    if state and (all(torch.is_tensor(v) for v in state.values()) or any(str(k).startswith('params') for k in state)):
        raise AesopError(
            f"{where} is a network's weights, not a training state (training_states/<iter>.state): to start from "
            'these weights, set path.pretrain_network_g to it'
        )
    missing = [key for key in TRAINING_STATE_KEYS if key not in state]
    raise AesopError(
        f'{where} is not a training state: it has no {", ".join(missing)} '
        f'(it holds {abbreviated([str(k) for k in state]) or "nothing"})'
    )


def check_resume(opt: dict, resume_iter: int) -> None:
    """basicsr's ``check_resume``: each saved network's ``path.pretrain_<network>`` becomes the run's own file of
    ``resume_iter`` (``models/net_<name>_<iter>``, ``.pth`` or ``.safetensors``: :func:`aesop.weights.saved_network`,
    the run's ``path.save_format`` first; basicsr's looked for ``.pth`` only), and ``params_ema`` keys ``params``.

    A network this run never saves (the frozen ``network_recon`` / ``network_clip`` of HR-aware finetuning, read
    from their own files) keeps its path when the run has no file of it; basicsr pointed it at one that is not there.
    """
    paths = opt['path']
    networks = [key for key in opt if key.startswith('network_')]
    if any(paths.get(f'pretrain_{network}') is not None for network in networks):
        print('pretrain_network path will be ignored during resuming.')
    save_format = paths.get('save_format') or 'pth'
    for network in networks:
        name = f'pretrain_{network}'
        if network in (paths.get('ignore_resume_networks') or ()):
            continue
        file = saved_network(paths['models'], f'net_{network.removeprefix("network_")}_{resume_iter}', save_format)
        if file.exists() or name in SAVED_NETWORKS:
            paths[name] = str(file)
            print(f'Set {name} to {paths[name]}')
    for key in [key for key in paths if key.startswith('param_key')]:
        if paths[key] == 'params_ema':
            paths[key] = 'params'
            print(f'Set {key} to params')


def _make_exp_dirs(opt: dict) -> None:
    """basicsr's ``make_exp_dirs`` (the run's folder, an earlier one archived, then a folder per ``path`` key),
    without the ``path`` keys that are settings, not folders (:attr:`aesop.schema.Paths.SETTINGS`)."""
    make_exp_dirs({**opt, 'path': {k: v for k, v in opt['path'].items() if k not in Paths.SETTINGS}})
