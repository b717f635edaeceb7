package dev.qlora4j.lora.optim;

import java.util.Locale;

/**
 * Learning-rate schedules exactly as HF transformers' {@code optimization.py}, applied the way {@code LambdaLR}
 * applies them: the optimizer step with 0-based index {@code step} uses {@code baseLr · factor(step)} (so with a
 * warmup the first step runs at lr 0, as in HF's Trainer).
 *
 * <ul>
 *   <li>{@code constant}: 1
 *   <li>{@code constant_with_warmup}: {@code step/max(1,warmup)} during warmup, then 1
 *   <li>{@code linear} ({@code get_linear_schedule_with_warmup}): warmup, then
 *       {@code max(0, (total-step)/max(1,total-warmup))}
 *   <li>{@code cosine} ({@code get_cosine_schedule_with_warmup}, num_cycles 0.5): warmup, then
 *       {@code max(0, 0.5·(1+cos(π·2·0.5·progress)))} with {@code progress = (step-warmup)/max(1,total-warmup)}
 * </ul>
 * All arithmetic is in double, as in Python.
 */
public record LrSchedule(Kind kind, double baseLr, int warmupSteps, int totalSteps) {

    public enum Kind {
        CONSTANT, CONSTANT_WITH_WARMUP, LINEAR, COSINE;

        /** {@code constant}, {@code constant_with_warmup}, {@code linear}, {@code cosine} (case-insensitive, '-' = '_'). */
        public static Kind parse(String s) {
            String k = s.trim().toLowerCase(Locale.ROOT).replace('-', '_');
            return switch (k) {
                case "constant" -> CONSTANT;
                case "constant_with_warmup" -> CONSTANT_WITH_WARMUP;
                case "linear" -> LINEAR;
                case "cosine" -> COSINE;
                default -> throw new IllegalArgumentException("unknown lr schedule '" + s + "' (constant, constant_with_warmup, linear, cosine)");
            };
        }

        /** HF's name for it. */
        public String hfName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public LrSchedule {
        if (kind == null) throw new IllegalArgumentException("lr schedule kind is null");
        if (!(baseLr >= 0) || Double.isInfinite(baseLr)) throw new IllegalArgumentException("learning rate must be finite and >= 0, got " + baseLr);
        if (warmupSteps < 0) throw new IllegalArgumentException("warmup steps must be >= 0, got " + warmupSteps);
        if (totalSteps < 0) throw new IllegalArgumentException("total steps must be >= 0, got " + totalSteps);
    }

    /**
     * A constant-lr schedule. With warmup use {@link Kind#CONSTANT_WITH_WARMUP}: like HF, plain {@code constant}
     * ignores warmup.
     */
    public static LrSchedule constant(double lr) {
        return new LrSchedule(Kind.CONSTANT, lr, 0, 0);
    }

    /** HF's {@code get_warmup_steps}: {@code warmup_steps} if > 0, else {@code ceil(total · ratio)}. */
    public static int warmupSteps(int warmupSteps, double warmupRatio, int totalSteps) {
        return warmupSteps > 0 ? warmupSteps : (int) Math.ceil(totalSteps * warmupRatio);
    }

    /** The multiplier of {@code baseLr} for the optimizer step with 0-based index {@code step}. */
    public double factor(long step) {
        return switch (kind) {
            case CONSTANT -> 1.0;
            case CONSTANT_WITH_WARMUP -> step < warmupSteps ? (double) step / Math.max(1.0, warmupSteps) : 1.0;
            case LINEAR -> step < warmupSteps ? (double) step / Math.max(1, warmupSteps)
                    : Math.max(0.0, (double) (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
            case COSINE -> {
                if (step < warmupSteps) yield (double) step / Math.max(1, warmupSteps);
                double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
                yield Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * 0.5 * 2.0 * progress)));
            }
        };
    }

    /** The learning rate of the optimizer step with 0-based index {@code step}. */
    public double lr(long step) {
        return baseLr * factor(step);
    }
}
