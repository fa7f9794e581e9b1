"""The study's training loop as the article wrote it, ported to Keras 3 (the benchmark's baseline).

TensorFlow backend, steps_per_execution=1, the article's model, optimizer and callbacks.
Run by train_speed.py in its own process:  python benchmarks/study_loop.py EPOCHS PREPARED_DIR
Prints one JSON line: epochs, seconds of fit, the last validation accuracy and the test accuracy.
"""

import json
import os
import sys
import tempfile
import time

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.callbacks import EarlyStopping, ReduceLROnPlateau, TensorBoard  # noqa: E402
from keras.layers import Dense, Dropout  # noqa: E402
from keras.models import Sequential  # noqa: E402
from keras.optimizers import Adam  # noqa: E402

epochs, prepared = int(sys.argv[1]), sys.argv[2]
with np.load(f"{prepared}/train.npz") as train, np.load(f"{prepared}/test.npz") as test:
    X_train, y_train, X_test, y_test = train["x"], train["y"], test["x"], test["y"]
keras.utils.set_random_seed(42)  # the article did not seed; seeding changes no timing

model = Sequential()
model.add(keras.Input(shape=(784,)))
model.add(Dense(256, activation="relu"))
model.add(Dropout(0.2))
model.add(Dense(128, activation="relu"))
model.add(Dropout(0.5))
model.add(Dense(10, activation="softmax"))
model.compile(optimizer=Adam(learning_rate=0.001), loss="categorical_crossentropy", metrics=["accuracy"])

es = EarlyStopping(monitor="val_loss", patience=10)
reduce_lr = ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=3)
tb = TensorBoard(log_dir=tempfile.mkdtemp(prefix="study-log-"))

started = time.perf_counter()
history = model.fit(
    X_train,
    y_train,
    epochs=epochs,
    batch_size=32,
    validation_split=0.2,
    shuffle=True,
    callbacks=[es, reduce_lr, tb],
    verbose=2,
)
seconds = time.perf_counter() - started
test_loss, test_accuracy = model.evaluate(X_test, y_test, verbose=0)
print(
    json.dumps(
        {
            "epochs": epochs,
            "seconds": seconds,
            "val_accuracy": history.history["val_accuracy"][-1],
            "test_accuracy": test_accuracy,
        }
    )
)
