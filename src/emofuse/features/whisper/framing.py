"""Whisper's input framing: the rate it takes audio at, its STFT and the context it was trained on."""

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160  # samples per mel frame; the encoder halves the frame rate: 320 samples (20 ms) per encoder frame
WINDOW = 30 * SAMPLE_RATE  # the context Whisper was trained on
