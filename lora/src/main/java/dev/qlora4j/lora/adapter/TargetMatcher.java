package dev.qlora4j.lora.adapter;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Which module paths an adapter config targets, as PEFT's {@code check_target_module_exists} decides it (PEFT
 * {@value AdapterConfigFile#PEFT_VERSION}), and which rank/alpha a module gets ({@code get_pattern_key}):
 *
 * <ul>
 *   <li>{@code exclude_modules} first: a regex full-matching the path, a list entry equal to it or a suffix
 *       {@code "." + entry}: excluded.</li>
 *   <li>regex string: {@code re.fullmatch(pattern, path)}; {@code "all-linear"}: every linear (the tied LM head is not
 *       one of the model's linears).</li>
 *   <li>list: the path equals an entry (then layers are not checked), or ends with {@code "." + entry} and, when
 *       {@code layers_to_transform} is set, its layer index ({@code re.match(r".*\.[^.]*\.(\d+)\.", path)}, or
 *       {@code .*\.<layers_pattern>\.(\d+)\.}) is one of them.</li>
 * </ul>
 *
 * Regexes are compiled with {@link java.util.regex}, which agrees with Python's {@code re} on the syntax module
 * patterns use (no {@code (?P<name>)} groups).
 */
public final class TargetMatcher {

    private static final Pattern ANY_LAYER = Pattern.compile(".*\\.[^.]*\\.(\\d+)\\.");

    /**
     * @param matched    matched module paths, in model order
     * @param perTarget  how many modules each target (list entry, regex, or {@code all-linear}) matched
     */
    public record Result(List<String> matched, Map<String, Integer> perTarget) {
    }

    private TargetMatcher() {
    }

    /**
     * Matches {@code targets} against {@code modules}.
     *
     * @throws AdapterException naming every target that matched nothing, with the available module names
     */
    public static Result match(LoraConfig cfg, TargetModules targets, List<String> modules) {
        Map<String, Integer> per = new LinkedHashMap<>();
        List<String> matched = new ArrayList<>();
        switch (targets) {
            case TargetModules.AllLinear a -> {
                for (String m : modules) if (!excluded(cfg, m)) matched.add(m);
                per.put(TargetModules.ALL_LINEAR, matched.size());
            }
            case TargetModules.Regex r -> {
                Pattern p = compile(r.pattern(), "target_modules");
                for (String m : modules) if (!excluded(cfg, m) && p.matcher(m).matches()) matched.add(m);
                per.put(r.pattern(), matched.size());
            }
            case TargetModules.Names n -> {
                for (String e : n.names()) per.put(e, 0);
                for (String m : modules) {
                    if (excluded(cfg, m)) continue;
                    if (n.names().contains(m)) {
                        per.merge(m, 1, Integer::sum);
                        matched.add(m);
                        continue;
                    }
                    boolean any = false;
                    for (String e : n.names()) {
                        if (m.endsWith("." + e) && layerSelected(cfg, m)) {
                            per.merge(e, 1, Integer::sum);
                            any = true;
                        }
                    }
                    if (any) matched.add(m);
                }
            }
        }
        List<String> missing = new ArrayList<>();
        per.forEach((t, count) -> {
            if (count == 0) missing.add(t);
        });
        if (!missing.isEmpty()) {
            StringBuilder sb = new StringBuilder("Target modules ");
            sb.append(missing.size() == 1 ? "'" + missing.getFirst() + "'" : missing.toString())
                    .append(missing.size() == 1 ? " matches" : " match").append(" no module of the base model");
            if (cfg.layersToTransform() != null && targets instanceof TargetModules.Names) {
                sb.append(" (with layers_to_transform=").append(cfg.layersToTransform());
                if (cfg.layersPattern() != null) sb.append(", layers_pattern=").append(cfg.layersPattern());
                sb.append(')');
            }
            if (cfg.excludeModules() != null) sb.append(" (after exclude_modules)");
            sb.append(". Available linear modules: ").append(summarize(modules))
                    .append(". A list entry matches a module named exactly so or ending in '.<entry>';"
                            + " a string is a regex that must match the whole name.");
            throw new AdapterException(sb.toString());
        }
        return new Result(List.copyOf(matched), Map.copyOf(per));
    }

    static boolean excluded(LoraConfig cfg, String key) {
        return switch (cfg.excludeModules()) {
            case null -> false;
            case TargetModules.Regex r -> compile(r.pattern(), "exclude_modules").matcher(key).matches();
            case TargetModules.Names n -> {
                for (String e : n.names()) if (key.equals(e) || key.endsWith("." + e)) yield true;
                yield false;
            }
            case TargetModules.AllLinear a -> true;
        };
    }

    private static boolean layerSelected(LoraConfig cfg, String key) {
        List<Integer> layers = cfg.layersToTransform();
        if (layers == null || layers.isEmpty()) return true;
        int idx = layerIndex(key, cfg.layersPattern());
        return idx >= 0 && layers.contains(idx);
    }

    /** The layer index PEFT reads from {@code key}, or -1. */
    static int layerIndex(String key, List<String> layersPattern) {
        if (layersPattern == null || layersPattern.isEmpty()) return group(ANY_LAYER.matcher(key));
        for (String p : layersPattern) {
            int i = group(compile(".*\\." + p + "\\.(\\d+)\\.", "layers_pattern").matcher(key));
            if (i >= 0) return i;
        }
        return -1;
    }

    private static int group(Matcher m) {
        if (!m.lookingAt()) return -1;
        try {
            return Integer.parseInt(m.group(m.groupCount()));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * PEFT's {@code get_pattern_key}: the first pattern (in the map's order) with
     * {@code re.match(rf"(.*\.)?({pattern})$", key)}, or null.
     */
    public static String patternKey(Collection<String> patterns, String key) {
        for (String p : patterns) {
            if (compile("(.*\\.)?(" + p + ")$", "rank_pattern/alpha_pattern").matcher(key).lookingAt()) return p;
        }
        return null;
    }

    /** The rank of module {@code key}: its rank_pattern entry, else {@code r}. */
    public static int rank(LoraConfig cfg, String key) {
        String k = patternKey(cfg.rankPattern().keySet(), key);
        return k == null ? cfg.r() : cfg.rankPattern().get(k);
    }

    /** The alpha of module {@code key}: its alpha_pattern entry, else {@code lora_alpha}. */
    public static double alpha(LoraConfig cfg, String key) {
        String k = patternKey(cfg.alphaPattern().keySet(), key);
        return k == null ? cfg.alpha() : cfg.alphaPattern().get(k).doubleValue();
    }

    private static Pattern compile(String regex, String what) {
        try {
            return Pattern.compile(regex);
        } catch (PatternSyntaxException e) {
            throw new AdapterException(what + ": invalid regular expression '" + regex + "': " + e.getDescription());
        }
    }

    /** Module names with layer indices folded: {@code transformer.h.{0..11}.attn.c_attn, ...}. */
    static String summarize(List<String> modules) {
        Map<String, Set<Integer>> forms = new LinkedHashMap<>();
        Pattern idx = Pattern.compile("\\.(\\d+)\\.");
        for (String m : modules) {
            Matcher mm = idx.matcher(m);
            if (mm.find()) {
                String form = m.substring(0, mm.start()) + ".{i}." + m.substring(mm.end());
                forms.computeIfAbsent(form, k -> new LinkedHashSet<>()).add(Integer.parseInt(mm.group(1)));
            } else {
                forms.computeIfAbsent(m, k -> new LinkedHashSet<>());
            }
        }
        List<String> out = new ArrayList<>();
        forms.forEach((form, layers) -> {
            if (layers.isEmpty()) {
                out.add(form);
            } else {
                int lo = layers.stream().min(Integer::compare).orElseThrow();
                int hi = layers.stream().max(Integer::compare).orElseThrow();
                String range = layers.size() == hi - lo + 1 ? lo + ".." + hi : layers.toString();
                out.add(form.replace("{i}", "{" + range + "}"));
            }
        });
        return String.join(", ", out);
    }
}
