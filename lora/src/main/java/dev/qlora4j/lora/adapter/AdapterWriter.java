package dev.qlora4j.lora.adapter;

import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;

/**
 * Saves an adapter as PEFT's {@code save_pretrained} does: {@code adapter_model.safetensors} (metadata
 * {@code {"format": "pt"}}, {@code base_model.model.<path>.lora_A.weight [r, in]} and {@code .lora_B.weight [out, r]}
 * as F32, adapter name "default" stripped) and {@code adapter_config.json} ({@code inference_mode: true}).
 *
 * <p>Atomic: a new directory is built beside the target and renamed into place; into an existing directory each
 * file is written to a temporary name, forced to disk and renamed over the old one (weights first, then config).
 */
public final class AdapterWriter {

    public static final String WEIGHTS = "adapter_model.safetensors";

    private AdapterWriter() {
    }

    public static void write(LoraModel m, Path dir) {
        LoraConfig cfg = m.config().toBuilder().inferenceMode(true).build();
        String json = AdapterConfigFile.toJson(cfg);
        SafetensorsWriter st = new SafetensorsWriter().metadata("format", "pt");
        ParamBuffer buf = m.params();
        for (ParamBuffer.Slice s : buf.slices()) {
            int[] shape = s.shape();
            long[] ls = new long[shape.length];
            for (int i = 0; i < shape.length; i++) ls[i] = shape[i];
            st.add(s.name(), DType.F32, ls, buf.copyOf(s));
        }
        Path target = dir.toAbsolutePath().normalize();
        try {
            if (Files.exists(target)) {
                if (!Files.isDirectory(target)) throw new AdapterException(target + ": exists and is not a directory");
                st.write(target.resolve(WEIGHTS));
                writeAtomically(target.resolve(AdapterConfigFile.NAME), json);
                return;
            }
            Path parent = target.getParent();
            if (parent == null) throw new AdapterException(target + ": cannot write an adapter to a file-system root");
            Files.createDirectories(parent);
            Path tmp = parent.resolve("." + target.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
            Files.createDirectory(tmp);
            try {
                st.write(tmp.resolve(WEIGHTS));
                writeAtomically(tmp.resolve(AdapterConfigFile.NAME), json);
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException | RuntimeException e) {
                deleteTree(tmp, e);
                throw e;
            }
        } catch (IOException e) {
            throw new AdapterException(target + ": cannot write the adapter: " + e, e);
        }
    }

    /** Writes {@code text} (UTF-8) to {@code file.tmp-*}, forces it and renames it over {@code file}. */
    static void writeAtomically(Path file, String text) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                var bb = java.nio.ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
                while (bb.hasRemaining()) ch.write(bb);
                ch.force(true);
            }
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
    }

    static void deleteTree(Path dir, Throwable primary) {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException e) {
            primary.addSuppressed(e);
        }
    }
}
