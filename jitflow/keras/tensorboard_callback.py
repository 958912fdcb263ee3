"""`keras.callbacks.TensorBoard` (TF 1.x form): the model's graph and the epoch-end logs (loss, metrics,
val_*) as scalar summaries in `log_dir`, step = epoch; with update_freq='batch' or a sample count,
`batch_*` scalars (step = batches written) and `epoch_*` ones (step = samples seen), through
`tf.summary.FileWriter`. Weight histograms, gradient and image summaries,
embeddings and profiling are not implemented: asking for them is an UnsupportedError."""
from __future__ import annotations

from ..errors import UnsupportedError
from ..tensorboard_proto import Summary
from .callbacks import Callback


class TensorBoard(Callback):
    def __init__(self, log_dir="./logs", histogram_freq=0, batch_size=32, write_graph=True, write_grads=False,
                 write_images=False, embeddings_freq=0, embeddings_layer_names=None, embeddings_metadata=None,
                 embeddings_data=None, update_freq="epoch", profile_batch=2):
        super().__init__()
        self.log_dir, self.histogram_freq, self.batch_size = log_dir, histogram_freq, batch_size
        self.write_graph, self.write_grads, self.write_images = write_graph, write_grads, write_images
        self.embeddings_freq, self.update_freq = embeddings_freq, update_freq
        if update_freq not in ("epoch", "batch") and not isinstance(update_freq, int):
            raise ValueError(f"update_freq must be 'epoch', 'batch' or an integer, got {update_freq!r}")
        self._writer = None
        self._samples_seen = self._samples_at_last_write = self._batches_written = 0

    def _check_supported(self):
        for arg, value in (("histogram_freq", self.histogram_freq), ("write_grads", self.write_grads),
                           ("write_images", self.write_images), ("embeddings_freq", self.embeddings_freq)):
            if value:
                raise UnsupportedError(f"keras.callbacks.TensorBoard({arg}={value!r}) is not supported by jitflow")

    def on_train_begin(self, logs=None):
        self._check_supported()
        from ..summary import FileWriter
        engine = self.model._engine
        self._writer = FileWriter(self.log_dir, graph=engine.graph if self.write_graph else None)

    def _write_logs(self, logs, step):
        values = [Summary.Value(tag=name, simple_value=float(value)) for name, value in (logs or {}).items()
                  if name not in ("batch", "size")]
        if values and self._writer is not None:
            self._writer.add_summary(Summary(value=values), step)
            self._writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch":
            return
        size = int(self.params.get("batch_size") or 1)
        samples = self.params.get("samples")
        if samples:                                    # the last batch of an epoch may be smaller
            size = min(size, int(samples) - batch * size) or size
        self._samples_seen += size
        if self.update_freq == "batch" or self._samples_seen - self._samples_at_last_write >= int(self.update_freq):
            self._write_logs({"batch_" + k: v for k, v in (logs or {}).items()}, self._batches_written)
            self._samples_at_last_write = self._samples_seen
            self._batches_written += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.update_freq == "epoch":
            self._write_logs(logs, epoch)
        else:                                          # TF 1.x: step = samples seen, tags epoch_*
            self._write_logs({"epoch_" + k: v for k, v in (logs or {}).items()}, self._samples_seen)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
