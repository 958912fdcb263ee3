"""`tf.contrib.factorization.KMeans` (TF 1.x): the k-means graph builder the classic example programs use
(`KMeans(inputs, num_clusters, distance_metric='cosine', use_mini_batch=True).training_graph()`).

Built from registry ops: distances are one matmul plus row norms, the nearest centre an argmin, and the
updates dense one-hot sums (k is small), so each training step compiles to one native call. Follows TF's
clustering_ops.py: random initialization picks `num_clusters` input rows (with replacement), the cosine
metric L2-normalizes the inputs (and the centres it compares against), mini-batch training moves each
centre by (sum of its new points - k * centre) / (its running count + k) with counts starting at one, and
full-batch training replaces each centre by the mean of its points (sum / (count + 1e-6)).
"""
from __future__ import annotations

import numpy as np

from ..api import math_ops as m
from ..api.array_ops import concat, expand_dims, one_hot, shape
from ..api.control_flow import cond
from ..api.convert import convert_to_tensor
from ..api.array_extra import l2_normalize
from ..api.gather_api import gather
from ..api.random_ops import random_uniform
from ..api.variables import Variable, assign, group
from ..errors import UnsupportedError
from ..ir.types import bool_, int64

__all__ = ["KMeans", "SQUARED_EUCLIDEAN_DISTANCE", "COSINE_DISTANCE", "RANDOM_INIT", "KMEANS_PLUS_PLUS_INIT",
           "KMC2_INIT"]

SQUARED_EUCLIDEAN_DISTANCE = "squared_euclidean"
COSINE_DISTANCE = "cosine"
RANDOM_INIT = "random"
KMEANS_PLUS_PLUS_INIT = "kmeans_plus_plus"
KMC2_INIT = "kmc2"


class KMeans:
    """Creates the graph for k-means clustering (TF 1.x `tf.contrib.factorization.KMeans`)."""

    def __init__(self, inputs, num_clusters, initial_clusters=RANDOM_INIT,
                 distance_metric=SQUARED_EUCLIDEAN_DISTANCE, use_mini_batch=False, mini_batch_steps_per_iteration=1,
                 random_seed=0, kmeans_plus_plus_num_retries=2, kmc2_chain_length=200):
        if distance_metric not in (SQUARED_EUCLIDEAN_DISTANCE, COSINE_DISTANCE):
            raise ValueError(f"Unsupported distance metric {distance_metric!r}: use "
                             f"{SQUARED_EUCLIDEAN_DISTANCE!r} or {COSINE_DISTANCE!r}")
        if isinstance(initial_clusters, str) and initial_clusters != RANDOM_INIT:
            if initial_clusters in (KMEANS_PLUS_PLUS_INIT, KMC2_INIT):
                raise UnsupportedError(f"KMeans(initial_clusters={initial_clusters!r}) is not supported by jitflow: "
                                       f"use {RANDOM_INIT!r}, a [num_clusters, dim] tensor, or a callable")
            raise ValueError(f"Unsupported initial_clusters {initial_clusters!r}")
        if use_mini_batch and int(mini_batch_steps_per_iteration) != 1:
            raise UnsupportedError("KMeans(mini_batch_steps_per_iteration > 1) is not supported by jitflow: "
                                   "use mini_batch_steps_per_iteration=1")
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        self._inputs = [convert_to_tensor(x) for x in inputs]
        self._num_clusters = num_clusters
        self._initial_clusters = initial_clusters
        self._distance_metric = distance_metric
        self._use_mini_batch = bool(use_mini_batch)
        self._random_seed = random_seed
        dim = self._inputs[0].shape.dims[-1] if self._inputs[0].shape.dims else None
        if len(self._inputs[0].shape.dims or ()) != 2 or dim is None:
            raise ValueError(f"KMeans inputs must be a matrix [num_points, dim] with a known dim, "
                             f"got shape {self._inputs[0].shape}")
        self._dim = int(dim)

    def _clusters_l2_normalized(self):
        return self._distance_metric == COSINE_DISTANCE and not self._use_mini_batch

    def _initial_value(self, inputs, num_clusters):
        """The [num_clusters, dim] starting centres (before the cosine metric's normalization)."""
        if callable(self._initial_clusters):
            return convert_to_tensor(self._initial_clusters(inputs, num_clusters))
        if isinstance(self._initial_clusters, str):        # RANDOM_INIT: random input rows, with replacement
            data = concat(inputs, 0) if len(inputs) > 1 else inputs[0]
            num_data = shape(data, out_type=int64)[0]
            indices = random_uniform([num_clusters], minval=0, maxval=num_data, dtype=int64,
                                     seed=self._random_seed)
            return gather(data, indices)
        return convert_to_tensor(self._initial_clusters)

    def _nearest(self, inp, clusters):
        """(all scores, nearest index int64, nearest distance) as TF's _infer_graph."""
        products = m.matmul(inp, clusters, transpose_b=True)
        row_norms = m.reduce_sum(m.square(inp), 1, keepdims=True)
        centre_norms = m.reduce_sum(m.square(clusters), 1)
        squared = m.maximum(row_norms - 2.0 * products + centre_norms, 0.0)
        all_scores = 1.0 - products if self._distance_metric == COSINE_DISTANCE else squared
        index = m.argmin(squared, 1)
        distance = m.reduce_min(squared, 1)
        if self._distance_metric == COSINE_DISTANCE:
            distance = distance * 0.5
        return all_scores, index, distance

    def training_graph(self):
        """(all_scores, cluster_idx, scores, cluster_centers_initialized, cluster_centers_var, init_op,
        training_op) as TF 1.4+; the first three are lists with one entry per input tensor."""
        if not isinstance(self._initial_clusters, str) and not callable(self._initial_clusters):
            initial = convert_to_tensor(self._initial_clusters)
            if initial.shape.dims is None or initial.shape.dims[0] is None:
                raise ValueError("KMeans initial_clusters needs a static number of rows")
            num_clusters = int(initial.shape.dims[0])
        else:
            num_clusters = int(self._num_clusters)
        dtype = self._inputs[0].dtype
        centers_var = Variable(np.zeros((num_clusters, self._dim), dtype.np), name="clusters")
        initialized = Variable(False, dtype=bool_, name="initialized")
        counts = Variable(np.ones((num_clusters,), np.int64), name="Variable") if self._use_mini_batch else None

        def initialize():
            start = self._initial_value(self._inputs, num_clusters)
            if self._distance_metric == COSINE_DISTANCE:
                start = l2_normalize(start, axis=1)
            return assign(centers_var, start), assign(initialized, True)

        def already():
            return m.identity(centers_var.value()), m.identity(initialized.value())

        init_op = group(*cond(initialized, already, initialize), name="init_clusters")

        inputs = self._inputs
        centers = centers_var
        if self._distance_metric == COSINE_DISTANCE:
            inputs = [l2_normalize(x, axis=1) for x in inputs]
            if not self._clusters_l2_normalized():
                centers = l2_normalize(centers, axis=1)
        all_scores, cluster_idx, scores = [], [], []
        for inp in inputs:
            a, i, d = self._nearest(inp, centers)
            all_scores.append(a)
            cluster_idx.append(i)
            scores.append(d)

        sums, batch_counts = [], []
        for inp, idx in zip(inputs, cluster_idx):
            member = one_hot(idx, num_clusters, dtype=dtype)          # [n, k]
            sums.append(m.matmul(member, inp, transpose_a=True))     # [k, dim]
            batch_counts.append(m.reduce_sum(member, 0))             # [k]
        total_sum = m.add_n(sums) if len(sums) > 1 else sums[0]
        total_count = m.add_n(batch_counts) if len(batch_counts) > 1 else batch_counts[0]
        if self._use_mini_batch:
            old = centers_var.value()
            new_counts = m.cast(counts, dtype) + total_count
            step = (total_sum - expand_dims(total_count, 1) * old) / expand_dims(m.maximum(new_counts, 1.0), 1)
            training_op = group(assign(centers_var, old + step),
                                assign(counts, counts + m.cast(total_count, int64)))
        else:
            new_centers = total_sum / (expand_dims(total_count, 1) + 1e-6)
            if self._clusters_l2_normalized():
                new_centers = l2_normalize(new_centers, axis=1)
            training_op = assign(centers_var, new_centers)
        return (all_scores, cluster_idx, scores, initialized, centers_var, init_op, training_op)


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.contrib.factorization")  # PEP 562: a missing name says so
