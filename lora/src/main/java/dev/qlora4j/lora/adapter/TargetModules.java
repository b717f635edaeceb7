package dev.qlora4j.lora.adapter;

import java.util.List;
import java.util.Locale;

/**
 * PEFT's {@code target_modules} (and {@code exclude_modules}): a list of names (each matches a module whose path equals
 * it or ends with {@code "." + name}), one regex string (Python {@code re.fullmatch} on the whole path), or the
 * shorthand {@code "all-linear"} (every linear except the output layer).
 */
public sealed interface TargetModules {

    /** PEFT's {@code INCLUDE_LINEAR_LAYERS_SHORTHAND}. */
    String ALL_LINEAR = "all-linear";

    /** @param names in the order given (PEFT keeps a set; its saved order is arbitrary) */
    record Names(List<String> names) implements TargetModules {
        public Names {
            names = List.copyOf(names);
            if (names.isEmpty()) throw new IllegalArgumentException("target_modules is an empty list");
            for (String n : names) {
                if (n.isEmpty()) throw new IllegalArgumentException("target_modules holds an empty name");
            }
        }
    }

    record Regex(String pattern) implements TargetModules {
    }

    record AllLinear() implements TargetModules {
    }

    static TargetModules names(String... names) {
        return new Names(List.of(names));
    }

    /** A string value as PEFT reads it: {@code "all-linear"} (any case) or a regex. */
    static TargetModules ofString(String s) {
        return s.toLowerCase(Locale.ROOT).equals(ALL_LINEAR) ? new AllLinear() : new Regex(s);
    }
}
