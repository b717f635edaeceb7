package dev.qlora4j.lora.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;

/**
 * Where a {@link Batches} stream stands: the next example is entry {@code index} of epoch {@code epoch}'s order.
 * The order of an epoch is a pure function of (seed, epoch), so the seed is the whole RNG state. {@code examples}
 * and {@code fingerprint} identify the training set, so resuming on other data fails loudly.
 */
public record DataPosition(long seed, int epoch, int index, int examples, long fingerprint) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One-line JSON (the fingerprint as a hex string, safe for any JSON reader). */
    public String toJson() {
        return "{\"seed\":" + seed + ",\"epoch\":" + epoch + ",\"index\":" + index + ",\"examples\":" + examples
                + ",\"fingerprint\":\"" + Long.toHexString(fingerprint) + "\"}";
    }

    public static DataPosition fromJson(String json) throws DataException {
        try {
            JsonNode n = JSON.readTree(json);
            for (String k : new String[] {"seed", "epoch", "index", "examples", "fingerprint"})
                if (n == null || !n.has(k)) throw new DataException("data position: missing \"" + k + "\" in " + json);
            return new DataPosition(n.get("seed").asLong(), n.get("epoch").asInt(), n.get("index").asInt(), n.get("examples").asInt(),
                    Long.parseUnsignedLong(n.get("fingerprint").asText(), 16));
        } catch (IOException | NumberFormatException e) {
            if (e instanceof DataException d) throw d;
            throw new DataException("data position: cannot parse " + json + ": " + e.getMessage(), e);
        }
    }
}
