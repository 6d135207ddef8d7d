"""tf_keras `Model.fit` with a partitioned embedding under ParameterServerStrategy, trained by the
reference composite (SGD on the embedding, listed whole; Adam on the dense layer). Run in its own
process by test_parameter_servers.py (a process holds one cluster): `python ps_training.py W`
prints a JSON line with the weights, counters and losses after training on W workers.
"""

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from reference import CompositeOptimizer  # noqa: E402

ROWS, WIDTH, LOOKUPS = 8, 2, 2
EPOCHS, STEPS_PER_EPOCH, BATCH = 3, 6, 4
TABLE = (np.arange(ROWS * WIDTH, dtype=np.float32).reshape(ROWS, WIDTH) - 8) / 10
KERNEL = np.linspace(-0.5, 0.5, LOOKUPS * WIDTH, dtype=np.float32).reshape(LOOKUPS * WIDTH, 1)
# Ids 0-5 only: rows 6 and 7 never get a gradient, so plain SGD must leave them exactly as they were.
IDS = np.array([[0, 5], [1, 4], [2, 3], [3, 1], [4, 0], [5, 2]] * 4, np.int64)
TARGETS = (np.arange(len(IDS), dtype=np.float32).reshape(-1, 1) % 5) / 4


def dataset(_context=None):
    return tf.data.Dataset.from_tensor_slices((IDS, TARGETS)).repeat().batch(BATCH)


def build():
    """The model and its composite: the embedding's ShardedVariable listed whole (SPEC DIST-2)."""
    model = tf_keras.Sequential([
        tf_keras.layers.Embedding(ROWS, WIDTH, input_length=LOOKUPS, name="embedding",
                                  embeddings_initializer=tf_keras.initializers.Constant(TABLE)),
        tf_keras.layers.Flatten(),
        tf_keras.layers.Dense(1, name="dense", kernel_initializer=tf_keras.initializers.Constant(KERNEL)),
    ])
    model.build((None, LOOKUPS))
    embedding, dense = model.get_layer("embedding"), model.get_layer("dense")
    optimizer = CompositeOptimizer([
        (tf_keras.optimizers.legacy.SGD(0.5), lambda: [embedding.embeddings]),
        (tf_keras.optimizers.legacy.Adam(0.05), lambda: dense.trainable_weights),
    ])
    model.compile(optimizer, loss="mse")
    return model, optimizer


def value_of(variable) -> np.ndarray:
    """A variable's value; a partitioned one's shards concatenated (the partitioner splits axis 0)."""
    parts = getattr(variable, "variables", [variable])
    return np.concatenate([np.asarray(p.numpy()) for p in parts])


def table_of(model) -> np.ndarray:
    return value_of(model.get_layer("embedding").embeddings)


def dense_of(model) -> list:
    dense = model.get_layer("dense")
    return [value_of(dense.kernel), value_of(dense.bias)]


def main(workers: int) -> dict:
    from adapters.cluster import Cluster

    cluster = Cluster.start_servers(workers, 2)
    cluster.wait_until("imported")
    cluster.wait_until("ready")
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(tf.train.ClusterSpec(cluster.spec), rpc_layer="grpc")
    strategy = tf.distribute.experimental.ParameterServerStrategy(
        resolver, variable_partitioner=tf.distribute.experimental.partitioners.FixedShardsPartitioner(2))
    with strategy.scope():
        model, optimizer = build()
    embeddings = model.get_layer("embedding").embeddings
    history = model.fit(tf_keras.utils.experimental.DatasetCreator(dataset), epochs=EPOCHS,
                        steps_per_epoch=STEPS_PER_EPOCH, verbose=0)
    return {
        "table_type": type(embeddings).__name__,
        "shard_devices": sorted({v.device for v in getattr(embeddings, "variables", [])}),
        "trained_names": [v.name for v in model.trainable_variables],
        "table": table_of(model).tolist(),
        "dense": [w.tolist() for w in dense_of(model)],
        "iterations": int(optimizer.iterations.numpy()),
        "sub_iterations": [int(o.iterations.numpy()) for o in optimizer.optimizers],
        "loss": history.history["loss"],
    }


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(int(sys.argv[1]))), flush=True)
    sys.stdout.flush()
    os._exit(0)  # The cluster is gone at exit; TensorFlow's goodbyes to it would only be noise.
