"""Train, save and export a model from Python — what `mp-keras train` does, by hand.

KERAS_BACKEND=jax python apps/train_in_a_script.py --out runs/script --epochs 30
"""

import argparse

import keras

from mp_keras import data, io
from mp_keras.callbacks import CrashSafeBackup, FailOnNonFinite
from mp_keras.export import export_model
from mp_keras.models import VAE

parser = argparse.ArgumentParser(description="Train a VAE on the binarized digits.")
parser.add_argument("--out", default="runs/script", help="output folder")
parser.add_argument("--epochs", type=int, default=30)
args = parser.parse_args()

keras.utils.set_random_seed(0)  # Python, NumPy and the backend
train, test = data.load("digits_binarized", "train"), data.load("digits_binarized", "test")
model = VAE(input_shape=train.info.shape, latent_dim=4, hidden_units=(256, 128), seed=0)
model.compile(optimizer=keras.optimizers.Adam(1e-3))

# Killed? Run the script again: it resumes from the last finished epoch, exactly.
backup = CrashSafeBackup(f"{args.out}/checkpoints")
start = backup.restore(model)
batches = data.pipeline(train.x, batch_size=64, seed=0, epochs=args.epochs, initial_epoch=start)
model.fit(
    batches,
    epochs=args.epochs,
    initial_epoch=start,
    steps_per_epoch=data.steps_per_epoch(len(train.x), 64),
    validation_data=data.pipeline(test.x, batch_size=256, shuffle=False),
    callbacks=[FailOnNonFinite(), backup, keras.callbacks.TensorBoard(f"{args.out}/logs")],
    verbose=2,
)

print("test ELBO:", model.evaluate(test.x, batch_size=256, return_dict=True, verbose=0)["elbo"])
io.save_model(model, f"{args.out}/model.keras")  # model.save, crash-safe
manifest = export_model(f"{args.out}/model.keras", f"{args.out}/export", overwrite=True)
tflite = manifest["artifacts"][1]["endpoints"]["decode"]
print("exported `decode` to TFLite; max abs diff from Keras:", tflite["max_abs_diff"])
