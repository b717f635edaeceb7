package dev.qlora4j.cli;

import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsException;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.quant.safetensors.TensorStore;
import dev.qlora4j.quant.weight.BlockScales;
import dev.qlora4j.quant.weight.BnbLayout;
import dev.qlora4j.quant.weight.FourBitWeight;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/** {@code qlora inspect PATH}: the tensors of a checkpoint, their storage and quantization state, and totals. */
@Command(name = "inspect", mixinStandardHelpOptions = true, usageHelpAutoWidth = true,
        header = "List the tensors, dtypes, shapes, bytes and quantization of a checkpoint.",
        description = {"List the tensors of a safetensors file or a model directory (model.safetensors, a sharded "
                + "model.safetensors.index.json, or pytorch_model.bin): name, dtype, shape, bytes and quantization "
                + "state (format, blocksize, double quant), then totals and parameter counts. Quantized weights count "
                + "by their logical [out, in] shape; their scales and tables count as storage, not parameters."})
final class InspectCommand extends Subcommand {

    @Parameters(index = "0", paramLabel = "PATH", description = "A .safetensors file, a .index.json, a pytorch_model.bin or a model directory.")
    Path path;

    @Option(names = "--summary", description = "Print only the totals, not one line per tensor.")
    boolean summary;

    /** What one quantized module (prefix) holds. */
    private record Module(String prefix, StoredWeight weight, String error) {
    }

    @Override
    int run() {
        ModelFiles files = ModelFiles.open(path, "PATH");
        try (TensorStore store = files.store()) {
            return report(files, store);
        }
    }

    private int report(ModelFiles files, TensorStore store) {
        PrintWriter out = out();
        List<String> names = new ArrayList<>(store.names());
        names.sort(InspectCommand::natural);

        // quantized modules, keyed by prefix, and which module each component tensor belongs to
        Map<String, Module> modules = new TreeMap<>(InspectCommand::natural);
        Map<String, String> owner = new HashMap<>();
        for (String n : names) {
            String p = BnbLayout.quantizedPrefixOf(n);
            if (p == null || modules.containsKey(p)) continue;
            Module m;
            try {
                m = new Module(p, BnbLayout.read(store, p), null);
            } catch (SafetensorsException | IllegalArgumentException e) {
                m = new Module(p, null, e.getMessage());
            }
            modules.put(p, m);
            for (String c : BnbLayout.componentNames(store, p)) owner.put(c, p);
        }

        out.println(files.description());
        if (files.configLine() != null) out.println(files.configLine());
        int wName = Math.max(4, names.stream().mapToInt(String::length).max().orElse(4));
        int wShape = Math.max(5, names.stream().mapToInt(n -> store.info(n).shapeString().length()).max().orElse(5));
        String fmt = "%-" + wName + "s  %-7s %-" + wShape + "s %14s  %s%n";
        if (!summary) {
            out.println();
            out.printf(Locale.ROOT, fmt, "NAME", "DTYPE", "SHAPE", "BYTES", "QUANTIZATION");
        }

        long bytes = 0, params = 0;
        Map<DType, long[]> byDtype = new EnumMap<>(DType.class);
        Map<WeightFormat, long[]> byFormat = new EnumMap<>(WeightFormat.class); // count, params, stored bytes
        for (String n : names) {
            TensorInfo ti = store.info(n);
            bytes += ti.byteSize();
            long[] d = byDtype.computeIfAbsent(ti.dtype(), k -> new long[2]);
            d[0]++;
            d[1] += ti.byteSize();
            String p = owner.get(n);
            String q = "";
            if (p == null) {
                params += ti.elementCount();
            } else {
                Module m = modules.get(p);
                boolean main = n.equals(p + BnbLayout.WEIGHT);
                if (m.weight() == null) {
                    q = main ? "INVALID: " + Subcommand.oneLine(m.error()) : "part of " + p + " (invalid)";
                } else if (main) {
                    StoredWeight w = m.weight();
                    params += w.elementCount();
                    long[] f = byFormat.computeIfAbsent(w.format(), k -> new long[3]);
                    f[0]++;
                    f[1] += w.elementCount();
                    f[2] += componentBytes(store, p);
                    q = describe(w);
                } else {
                    q = "  " + n.substring(p.length() + 1) + " of " + p;
                }
            }
            if (!summary) {
                out.printf(Locale.ROOT, fmt, n, ti.dtype(), ti.shapeString(), String.format(Locale.ROOT, "%,d", ti.byteSize()), q);
            }
        }

        out.println();
        out.printf(Locale.ROOT, "tensors:    %,d%n", names.size());
        out.printf(Locale.ROOT, "bytes:      %,d (%.2f MiB)%n", bytes, bytes / (1024.0 * 1024.0));
        StringBuilder dt = new StringBuilder();
        byDtype.forEach((k, v) -> dt.append(dt.isEmpty() ? "" : ", ").append(String.format(Locale.ROOT, "%s %,d tensors %,d B", k, v[0], v[1])));
        out.println("by dtype:   " + dt);
        out.printf(Locale.ROOT, "parameters: %,d (%s)%n", params, Units.count(params));
        if (!byFormat.isEmpty()) {
            byFormat.forEach((f, v) -> out.printf(Locale.ROOT, "quantized:  %s: %d weights, %,d parameters, %,d bytes with scales and tables (%.3f bits/param)%n",
                    Units.formatName(f), v[0], v[1], v[2], v[2] * 8.0 / v[1]));
        }
        long invalid = modules.values().stream().filter(m -> m.weight() == null).count();
        out.flush();
        if (invalid > 0) {
            Module first = modules.values().stream().filter(m -> m.weight() == null).findFirst().orElseThrow();
            return fail(QloraCommand.EXIT_USER_ERROR, invalid + " quantized weight(s) are inconsistent; first: "
                    + first.error(), null);
        }
        return QloraCommand.EXIT_OK;
    }

    static String describe(StoredWeight w) {
        String shape = "[" + w.rows() + ", " + w.cols() + "]";
        return switch (w) {
            case FourBitWeight f -> Units.formatName(f.format()) + " " + shape + " blocksize " + f.blocksize()
                    + (f.scales() instanceof BlockScales.DoubleQuantScales dq
                    ? ", double-quant (nested blocksize " + dq.nestedBlocksize() + ", offset " + dq.offset() + ")"
                    : ", fp32 absmax");
            default -> Units.formatName(w.format()) + " " + shape;
        };
    }

    private static long componentBytes(TensorStore store, String prefix) {
        long b = 0;
        for (String c : BnbLayout.componentNames(store, prefix)) b += store.info(c).byteSize();
        return b;
    }

    /** Name order with numbers compared by value, so h.2 comes before h.10. */
    static int natural(String a, String b) {
        int i = 0, j = 0;
        while (i < a.length() && j < b.length()) {
            char ca = a.charAt(i), cb = b.charAt(j);
            if (Character.isDigit(ca) && Character.isDigit(cb)) {
                int si = i, sj = j;
                while (i < a.length() && Character.isDigit(a.charAt(i))) i++;
                while (j < b.length() && Character.isDigit(b.charAt(j))) j++;
                String na = a.substring(si, i).replaceFirst("^0+(?=.)", ""), nb = b.substring(sj, j).replaceFirst("^0+(?=.)", "");
                int c = na.length() != nb.length() ? Integer.compare(na.length(), nb.length()) : na.compareTo(nb);
                if (c != 0) return c;
            } else {
                if (ca != cb) return Character.compare(ca, cb);
                i++;
                j++;
            }
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }
}
