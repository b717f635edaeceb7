package dev.qlora4j.lora.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qlora4j.lora.adapter.AdapterConfigFile;
import dev.qlora4j.lora.adapter.AdapterWriter;
import dev.qlora4j.lora.data.DataException;
import dev.qlora4j.lora.data.DataPosition;
import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.safetensors.FloatTensorCodec;
import dev.qlora4j.quant.safetensors.SafetensorsException;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.TensorInfo;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A resumable snapshot of a training run, one directory {@code <out>/checkpoint-<step>/} (HF Trainer's layout):
 *
 * <ul>
 *   <li>{@code adapter_config.json} + {@code adapter_model.safetensors}: the adapter at that step, PEFT format, so a
 *       checkpoint is also a usable adapter (a full fine-tune writes a Hugging Face model's files instead:
 *       {@link Trainable#writeWeights});</li>
 *   <li>{@code optimizer.safetensors}: AdamW's {@code exp_avg}, {@code exp_avg_sq} and step count;</li>
 *   <li>{@code trainer_state.json}: the step, the RNG state (seed and LoRA-dropout micro-step), the data position
 *       ({@link DataPosition}), the trainer config and free-form run info.</li>
 * </ul>
 *
 * Written atomically: everything goes into a hidden sibling directory that is renamed into place, so a crash leaves
 * either the previous checkpoints or the complete new one; {@link #list} ignores leftovers.
 */
public final class Checkpoint {

    public static final String STATE = "trainer_state.json";
    public static final String OPTIMIZER = "optimizer.safetensors";
    public static final String PREFIX = "checkpoint-";
    static final String FORMAT = "qlora4j-trainer-state-v1";
    private static final Pattern NAME = Pattern.compile(Pattern.quote(PREFIX) + "(\\d+)");
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** What {@code trainer_state.json} says. */
    public record State(int step, long microStep, long seed, double epoch, DataPosition position, TrainConfig config,
                        JsonNode run, String kind) {
    }

    private Checkpoint() {
    }

    /**
     * Writes {@code <out>/checkpoint-<step>/} for the trainer's current state (replacing one of the same step).
     *
     * @param run free-form information recorded under {@code "run"} (base model, quantization, data files), or null
     */
    public static Path write(Trainer t, Path out, Map<String, String> run) {
        Path target = out.resolve(PREFIX + t.stepsDone()).toAbsolutePath().normalize();
        Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        try {
            Files.createDirectories(out);
            Files.createDirectory(tmp);
            try {
                t.trainable().writeWeights(tmp);
                t.optimizer().save(tmp.resolve(OPTIMIZER));
                writeFile(tmp.resolve(STATE), JSON.writeValueAsString(stateJson(t, run)) + "\n");
                if (Files.exists(target)) {
                    Path old = target.resolveSibling("." + target.getFileName() + ".old-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
                    Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                    deleteTree(old);
                } else {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                }
            } catch (IOException | RuntimeException e) {
                try {
                    deleteTree(tmp);
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
                throw e;
            }
            return target;
        } catch (IOException e) {
            throw new TrainException(target + ": cannot write the checkpoint: " + e, e);
        }
    }

    private static ObjectNode stateJson(Trainer t, Map<String, String> run) throws IOException {
        ObjectNode o = JSON.createObjectNode();
        o.put("format", FORMAT);
        o.put("global_step", t.stepsDone());
        o.put("kind", t.trainable().kind());
        o.put("max_steps", t.config().steps());
        o.put("epoch", t.epoch());
        ObjectNode rng = o.putObject("rng");
        rng.put("seed", t.config().seed());
        rng.put("lora_dropout_micro_step", t.microStepsDone());
        o.set("data_position", JSON.readTree(t.dataPosition().toJson()));
        o.set("trainer_config", t.config().toJson());
        ObjectNode r = o.putObject("run");
        if (run != null) run.forEach(r::put);
        return o;
    }

    /** Reads {@code dir/trainer_state.json}. */
    public static State readState(Path dir) {
        Path file = dir.resolve(STATE);
        if (!Files.isDirectory(dir)) throw new TrainException(dir + ": no such checkpoint directory");
        if (!Files.isRegularFile(file)) {
            throw new TrainException(dir + ": not a training checkpoint (no " + STATE + ")");
        }
        JsonNode o;
        try {
            o = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new TrainException(file + ": not readable JSON: " + oneLine(e.getMessage()), e);
        }
        if (o == null || !FORMAT.equals(o.path("format").asText())) {
            throw new TrainException(file + ": not a qlora4j trainer state (format '" + (o == null ? "" : o.path("format").asText())
                    + "', expected '" + FORMAT + "')");
        }
        for (String k : List.of("global_step", "rng", "data_position", "trainer_config")) {
            if (!o.has(k)) throw new TrainException(file + ": missing \"" + k + "\"");
        }
        try {
            return new State(o.get("global_step").asInt(), o.path("rng").path("lora_dropout_micro_step").asLong(),
                    o.path("rng").path("seed").asLong(), o.path("epoch").asDouble(),
                    DataPosition.fromJson(o.get("data_position").toString()),
                    TrainConfig.fromJson(o.get("trainer_config"), file.toString()), o.path("run"),
                    o.path("kind").asText("lora"));
        } catch (DataException e) {
            throw new TrainException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Puts the trainer (built with this run's config, on the same training data) and its adapter into the state
     * saved in {@code dir}: adapter parameters, optimizer, step, data position. Refuses a checkpoint whose config
     * differs in anything that changes the numbers.
     */
    public static State restore(Trainer t, Path dir) {
        State s = readState(dir);
        List<String> diff = t.config().differencesFrom(s.config());
        if (!diff.isEmpty()) {
            throw new TrainException(dir + ": the checkpoint was trained with other settings: " + String.join(", ", diff)
                    + " (resume with the original flags)");
        }
        if (s.microStep() != (long) s.step() * t.config().gradAccum()) {
            throw new TrainException(dir.resolve(STATE) + ": micro-step " + s.microStep() + " does not match step "
                    + s.step() + " × grad-accum " + t.config().gradAccum());
        }
        String kind = s.kind();
        if (!kind.equals(t.trainable().kind())) {
            throw new TrainException(dir + ": the checkpoint is of a " + kind + " run, this run is " + t.trainable().kind()
                    + (kind.equals("full") ? " (add --full)" : " (drop --full)"));
        }
        t.trainable().readWeights(dir);
        try {
            t.restore(s.step(), s.position(), dir.resolve(OPTIMIZER));
        } catch (DataException e) {
            throw new TrainException(dir + ": " + e.getMessage() + " (resume on the same data files and --seed)", e);
        } catch (IOException e) {
            throw new TrainException(dir.resolve(OPTIMIZER) + ": " + oneLine(e.getMessage()), e);
        }
        return s;
    }

    /** Overwrites every slice of {@code buf} from the adapter file; the file must hold exactly those tensors. */
    public static void loadParams(ParamBuffer buf, Path file) {
        if (!Files.isRegularFile(file)) throw new TrainException(file.getParent() + ": no " + file.getFileName());
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (ParamBuffer.Slice s : buf.slices()) {
                if (!f.contains(s.name())) throw new TrainException(file + ": missing tensor '" + s.name() + "'");
                TensorInfo ti = f.info(s.name());
                long[] want = Arrays.stream(s.shape()).asLongStream().toArray();
                if (!FloatTensorCodec.isFloat(ti.dtype()) || !Arrays.equals(ti.shape(), want)) {
                    throw new TrainException(file + ": tensor '" + s.name() + "' is " + ti.dtype() + " " + ti.shapeString()
                            + ", expected F32 " + Arrays.toString(want));
                }
                buf.set(s, f.readFloats(s.name()));
            }
            if (f.names().size() != buf.slices().size()) {
                throw new TrainException(file + ": holds " + f.names().size() + " tensors, the adapter has "
                        + buf.slices().size());
            }
        } catch (SafetensorsException e) {
            throw new TrainException(e.getMessage(), e);
        }
    }

    /** The checkpoint directories in {@code out}, oldest step first. */
    public static List<Path> list(Path out) {
        if (!Files.isDirectory(out)) return List.of();
        List<Path> all = new ArrayList<>();
        try (Stream<Path> s = Files.list(out)) {
            s.filter(p -> NAME.matcher(p.getFileName().toString()).matches() && Files.isDirectory(p)).forEach(all::add);
        } catch (IOException e) {
            throw new TrainException(out + ": cannot list checkpoints: " + e, e);
        }
        all.sort(Comparator.comparingLong(Checkpoint::stepOf));
        return all;
    }

    /** The step of a {@code checkpoint-<step>} directory, or -1 for another name. */
    public static long stepOf(Path dir) {
        Matcher m = NAME.matcher(dir.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    /**
     * {@code path} if it is a checkpoint (holds {@code trainer_state.json}), else its newest {@code checkpoint-N}
     * subdirectory (an output directory given to {@code --resume}).
     */
    public static Path resolve(Path path) {
        if (!Files.exists(path)) throw new TrainException(path + ": no such checkpoint or output directory");
        if (Files.isRegularFile(path.resolve(STATE))) return path;
        List<Path> all = list(path);
        if (all.isEmpty()) {
            String hint = Files.isRegularFile(path.resolve(AdapterConfigFile.NAME))
                    ? " (it is an adapter; use --init-adapter to continue training it with a fresh optimizer)" : "";
            throw new TrainException(path + ": neither a checkpoint (no " + STATE + ") nor an output directory with "
                    + PREFIX + "N subdirectories" + hint);
        }
        return all.getLast();
    }

    /** Deletes all but the newest {@code keep} checkpoints (0 keeps all). */
    public static void prune(Path out, int keep) {
        if (keep <= 0) return;
        List<Path> all = list(out);
        for (int i = 0; i < all.size() - keep; i++) {
            try {
                deleteTree(all.get(i));
            } catch (IOException e) {
                throw new TrainException(all.get(i) + ": cannot delete an old checkpoint: " + e, e);
            }
        }
    }

    /** Writes {@code text} to {@code file} and forces it to disk. */
    static void writeFile(Path file, String text) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            ByteBuffer bb = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
            while (bb.hasRemaining()) ch.write(bb);
            ch.force(true);
        }
    }

    /** Writes {@code text} beside {@code file} and renames it over {@code file}. */
    static void writeAtomically(Path file, String text) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        try {
            writeFile(tmp, text);
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ').strip();
    }
}
