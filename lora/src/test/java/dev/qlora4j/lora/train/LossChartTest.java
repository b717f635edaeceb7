package dev.qlora4j.lora.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;
import org.xml.sax.InputSource;

import javax.xml.parsers.DocumentBuilderFactory;
import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class LossChartTest {

    @TempDir
    Path tmp;

    /** Parses the SVG as XML (namespace-aware, no DTDs): fails on anything that is not well-formed. */
    static Document parse(String svg) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        Document d = f.newDocumentBuilder().parse(new InputSource(new StringReader(svg)));
        assertEquals("svg", d.getDocumentElement().getLocalName());
        assertEquals("http://www.w3.org/2000/svg", d.getDocumentElement().getNamespaceURI());
        return d;
    }

    static Element byId(Document d, String id) {
        NodeList all = d.getElementsByTagNameNS("*", "*");
        for (int i = 0; i < all.getLength(); i++) {
            Element e = (Element) all.item(i);
            if (id.equals(e.getAttribute("id"))) return e;
        }
        return null;
    }

    static List<double[]> points(Element polyline) {
        List<double[]> l = new ArrayList<>();
        for (String p : polyline.getAttribute("points").trim().split("\\s+")) {
            String[] xy = p.split(",");
            l.add(new double[]{Double.parseDouble(xy[0]), Double.parseDouble(xy[1])});
        }
        return l;
    }

    static String text(Document d, String id) {
        Element e = byId(d, id);
        return e == null ? null : e.getTextContent();
    }

    /** metrics.jsonl lines as MetricsLog writes them: null for non-finite numbers. */
    static void metrics(Path dir, List<String> lines) throws Exception {
        Files.write(dir.resolve(MetricsLog.FILE), lines);
    }

    static String line(int step, String loss, String eval) {
        return "{\"step\":" + step + ",\"loss\":" + loss + ",\"lr\":1.0E-4,\"grad_norm\":0.5,\"tokens_per_s\":100.0,"
                + "\"rss_mib\":300.0,\"epoch\":0.1,\"tokens\":48,\"targets\":40" + (eval == null ? "" : ",\"eval_loss\":" + eval) + "}";
    }

    @Test
    void chartFromMetricsHasOnePointPerStepEvalPointsAxesAndLegend() throws Exception {
        List<String> lines = new ArrayList<>();
        for (int s = 1; s <= 30; s++) {
            String loss = s == 7 ? "null" : Double.toString(3 + 5.0 / s); // step 7 diverged: not drawn
            lines.add(line(s, loss, s % 10 == 0 ? Double.toString(3.5 + 1.0 / s) : null));
        }
        lines.add(""); // a trailing blank line and a half-written last line are skipped, not errors
        lines.add("{\"step\":31,\"lo");
        metrics(tmp, lines);
        Path file = LossChart.write(tmp, "tiny-gpt2 (nf4) · LoRA r=4 α=8 <&> \"x\"", "30 steps × 2×12 tokens", 4.25);
        assertEquals(tmp.resolve("loss_chart.svg"), file);
        String svg = Files.readString(file);
        Document d = parse(svg);
        assertFalse(svg.contains("<script") || svg.contains("href") || svg.contains("@import") || svg.contains("url("),
                "self-contained");
        assertFalse(svg.contains("NaN") || svg.contains("Infinity"), svg);

        List<double[]> train = points(byId(d, "train-loss"));
        assertEquals(29, train.size(), "one point per step with a finite loss");
        for (int i = 1; i < train.size(); i++) assertTrue(train.get(i)[0] > train.get(i - 1)[0], "x grows with the step");
        // loss falls 8 → 3.17: step 1 is the highest point (smallest y), step 30 the lowest on the curve
        assertTrue(train.get(0)[1] < train.get(train.size() - 1)[1]);
        for (double[] p : train) {
            assertTrue(p[0] >= LossChart.LEFT - 1e-9 && p[0] <= LossChart.WIDTH - LossChart.RIGHT + 1e-9, "x in the plot");
            assertTrue(p[1] >= LossChart.TOP - 1e-9 && p[1] <= LossChart.HEIGHT - LossChart.BOTTOM + 1e-9, "y in the plot");
        }
        // the x scale is linear in the step: equal step gaps are equal pixel gaps (step 6 → 8 skips the NaN at 7)
        double dx = train.get(1)[0] - train.get(0)[0];
        assertEquals(2 * dx, train.get(6)[0] - train.get(5)[0], 0.11);
        assertNotNull(byId(d, "train-loss-smoothed"), "30 steps get a smoothed line");
        assertEquals(29, points(byId(d, "train-loss-smoothed")).size());

        // eval: step 0 (before training) and steps 10, 20, 30
        List<double[]> eval = points(byId(d, "eval-loss"));
        assertEquals(4, eval.size());
        assertEquals(4, byId(d, "eval-points").getElementsByTagNameNS("*", "circle").getLength());
        assertEquals(LossChart.LEFT, eval.get(0)[0], 0.05, "step 0 sits on the y axis");
        assertEquals(train.get(train.size() - 1)[0], eval.get(3)[0], 0.05, "the eval at step 30 is above step 30");

        assertTrue(text(d, "chart-title").contains("LoRA r=4 α=8 <&> \"x\""), text(d, "chart-title"));
        assertEquals("30 steps × 2×12 tokens", text(d, "chart-subtitle"));
        String facts = text(d, "chart-facts");
        assertTrue(facts.contains("steps 1–30"), facts);
        assertTrue(facts.contains("eval loss 4.2500 → 3.5333 (best 3.5333 at step 30)"), facts);
        assertTrue(facts.contains("1 step with a non-finite loss not drawn"), facts);
        String legend = byId(d, "legend").getTextContent();
        assertTrue(legend.contains("train loss") && legend.contains("smoothed") && legend.contains("eval loss"), legend);
        assertTrue(byId(d, "x-ticks").getElementsByTagNameNS("*", "text").getLength() >= 3);
        assertTrue(byId(d, "y-ticks").getElementsByTagNameNS("*", "text").getLength() >= 3);
        assertEquals("step", text(d, "x-label"));
        assertFalse(Files.exists(tmp.resolve(".loss_chart.svg.tmp")));
    }

    @Test
    void evalPointsAreCircles() throws Exception {
        LossChart.Data data = LossChart.data(Map.of(1, 5.0, 2, 4.0, 3, 3.0), Map.of(0, 6.0, 3, 3.5));
        Document d = parse(LossChart.svg(data, "t", ""));
        NodeList circles = byId(d, "eval-points").getElementsByTagNameNS("*", "circle");
        assertEquals(2, circles.getLength());
        List<double[]> eval = points(byId(d, "eval-loss"));
        for (int i = 0; i < 2; i++) {
            Element c = (Element) circles.item(i);
            assertEquals(eval.get(i)[0], Double.parseDouble(c.getAttribute("cx")), 1e-9);
            assertEquals(eval.get(i)[1], Double.parseDouble(c.getAttribute("cy")), 1e-9);
        }
        assertNull(byId(d, "train-loss-smoothed"), "3 steps: no smoothed line");
        assertNull(byId(d, "chart-subtitle"), "an empty subtitle is left out");
        // 6.0 at step 0 is the highest value: the smallest y of all points
        double top = eval.get(0)[1];
        for (double[] p : points(byId(d, "train-loss"))) assertTrue(p[1] > top);
    }

    @Test
    void aResumedRunsRedoneStepsKeepTheirLastLine() throws Exception {
        metrics(tmp, List.of(line(1, "4.0", null), line(2, "3.0", "3.9"), line(3, "2.0", null),
                line(2, "3.5", null), line(3, "2.5", "2.6")));
        LossChart.Data d = LossChart.read(tmp.resolve(MetricsLog.FILE), Double.NaN);
        assertArrayEquals(new int[]{1, 2, 3}, d.steps());
        assertArrayEquals(new double[]{4.0, 3.5, 2.5}, d.loss());
        assertArrayEquals(new int[]{3}, d.evalSteps(), "step 2's eval was redone without one");
        assertArrayEquals(new double[]{2.6}, d.evalLoss());
    }

    @Test
    void emptyMissingAndAllNanLogsGiveAValidChartThatSaysSo() throws Exception {
        Document none = parse(Files.readString(LossChart.write(tmp, "run", "", Double.NaN))); // no metrics.jsonl yet
        assertEquals("no steps logged yet", text(none, "no-data"));
        assertNull(byId(none, "train-loss"));

        metrics(tmp, List.of());
        assertEquals("no steps logged yet", text(parse(Files.readString(LossChart.write(tmp, "run", "", Double.NaN))), "no-data"));

        metrics(tmp, List.of(line(1, "null", null), line(2, "null", "null")));
        String svg = Files.readString(LossChart.write(tmp, "run", "", Double.NaN));
        Document nan = parse(svg);
        assertEquals("no finite loss logged yet", text(nan, "no-data"));
        assertTrue(text(nan, "chart-facts").contains("2 steps with a non-finite loss not drawn"));
        assertFalse(svg.contains("NaN"), svg);
    }

    @Test
    void oneStepAndFlatLossesStillHaveARange() throws Exception {
        metrics(tmp, List.of(line(1, "2.5", "2.5")));
        String svg = Files.readString(LossChart.write(tmp, "run", "1 step", Double.NaN));
        Document d = parse(svg);
        assertFalse(svg.contains("NaN") || svg.contains("Infinity"), svg);
        assertEquals(1, points(byId(d, "train-loss")).size());
        assertNotNull(byId(d, "train-point"), "a single step is drawn as a point");
        assertTrue(text(d, "chart-facts").startsWith("step 1 · last train loss 2.5000 · eval loss 2.5000 at step 1"),
                text(d, "chart-facts"));
        double y = points(byId(d, "train-loss")).get(0)[1];
        assertTrue(y > LossChart.TOP && y < LossChart.HEIGHT - LossChart.BOTTOM, "a flat value sits inside the plot: " + y);
    }

    @Test
    void niceTicksAndLabels() {
        assertArrayEquals(new double[]{0, 2.5, 5, 7.5, 10, 12.5}, LossChart.ticks(0.3, 10.9, 6), 1e-12);
        double[] t = LossChart.ticks(10.8155, 10.8384, 6);
        assertArrayEquals(new double[]{10.815, 10.82, 10.825, 10.83, 10.835, 10.84}, t, 1e-9);
        assertEquals("10.815", LossChart.tickLabel(t[0], t));
        assertEquals("10.840", LossChart.tickLabel(t[5], t), "as many decimals as the spacing needs, on every tick");
        double[] u = LossChart.ticks(10.81, 10.84, 4);
        assertArrayEquals(new double[]{10.81, 10.82, 10.83, 10.84}, u, 1e-9); // not 10.80 … 10.85 from rounding errors
        assertEquals("10.84", LossChart.tickLabel(u[u.length - 1], u), java.util.Arrays.toString(u));
        double[] steps = LossChart.ticks(0, 700, 8);
        assertEquals(100, steps[1] - steps[0], 1e-9);
        assertEquals("300", LossChart.tickLabel(steps[3], steps));
        double[] q = LossChart.ticks(0, 1, 5);
        assertEquals("0.25", LossChart.tickLabel(q[1], q));
    }

    @Test
    void smoothingFollowsTheTrendWithoutStartingAtZero() {
        double[] v = {4, 4, 4, 2, 2, 2};
        double[] e = LossChart.ema(v, 0.5);
        assertEquals(4.0, e[0], 1e-12, "debiased: the first value, not (1-w)·v");
        assertEquals(4.0, e[2], 1e-12);
        assertTrue(e[3] < 4 && e[3] > 2 && e[5] < e[4] && e[5] > 2);
        assertEquals(1 - 2 / 6.0, LossChart.smoothing(30), 1e-12);
        assertEquals(1 - 2 / 51.0, LossChart.smoothing(1000), 1e-12);
    }
}
