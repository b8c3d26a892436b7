"""Draw the learned topology during training."""
import io
import os.path as osp
from typing import List

from mmengine.fileio import get_file_backend
from mmengine.hooks import Hook

from ...models import topology_backbones
from ...registry import register_hook
from ...utils.validation import check_bool, check_int
from ...visualization import draw_topology, figure_to_rgb


@register_hook
class TopologyVisualizationHook(Hook):
    """Save a picture of every topology backbone's learned graph (one panel per
    stage) every ``interval`` epochs or iterations and after training.

    The PNG goes to ``{work_dir}/{out_dir}/{epoch_N|iter_N}.png`` (through
    mmengine's file backends, so a remote work dir works too) and, as mmdet's
    ``DetVisualizationHook`` does, to the runner's visualizer with
    ``add_image('topology', ...)``, so TensorBoard or W&B backends show it.

    Args:
        interval (int): draw every this many epochs (iterations if not
            ``by_epoch``).
        by_epoch (bool): count ``interval`` in epochs.
        out_dir (str): folder under the work dir.
        dpi (int): resolution of the saved PNG.
    """

    priority = 'VERY_LOW'

    def __init__(self,
                 interval: int = 1,
                 by_epoch: bool = True,
                 out_dir: str = 'topology',
                 dpi: int = 110):
        check_int('interval', interval, min_value=1)
        check_bool('by_epoch', by_epoch)
        if not (isinstance(out_dir, str) and out_dir):
            raise ValueError(f'out_dir must be a folder name (a non-empty '
                             f'string), got {out_dir!r}')
        check_int('dpi', dpi, min_value=1)
        self.interval = interval
        self.by_epoch = by_epoch
        self.out_dir = out_dir
        self.dpi = dpi

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self.draw(runner, f'epoch_{runner.epoch}', runner.epoch)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if not self.by_epoch and self.every_n_train_iters(
                runner, self.interval):
            self.draw(runner, f'iter_{runner.iter + 1}', runner.iter + 1)

    def after_train(self, runner) -> None:
        step = runner.epoch if self.by_epoch else runner.iter
        self.draw(runner, 'final', step)

    def draw(self, runner, tag: str, step: int) -> List[str]:
        """Draw, save and hand on the pictures; returns the files."""
        files = []
        folder = osp.join(runner.work_dir, self.out_dir)
        backend = get_file_backend(folder)
        for name, backbone in topology_backbones(runner.model):
            fig = draw_topology(
                backbone.topology_graphs(),
                title=f'{name}, {tag.replace("_", " ")}')
            key = 'topology' if name == 'backbone' else f'topology/{name}'
            runner.visualizer.add_image(key, figure_to_rgb(fig), step=step)
            suffix = '' if name == 'backbone' else f'_{name}'
            path = backend.join_path(folder, f'{tag}{suffix}.png')
            png = io.BytesIO()
            fig.savefig(png, format='png', dpi=self.dpi)
            backend.put(png.getvalue(), path)
            files.append(path)
        return files
