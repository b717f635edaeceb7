package dev.qlora4j.lora.train;

/**
 * A training run that cannot go on: a checkpoint that is missing, damaged or saved by a different run, a resume with
 * other settings, an output directory that would be clobbered, or a loss that became NaN/Inf. The message names the
 * file or the setting.
 */
public class TrainException extends RuntimeException {
    public TrainException(String message) {
        super(message);
    }

    public TrainException(String message, Throwable cause) {
        super(message, cause);
    }
}
