// Loaded with `node --import` into a child the benchmark times: at exit it writes the process's own CPU time
// (user + system, every thread: GC and libuv's pool included) and peak RSS to BENCH_CPU_OUT, exactly, where
// polling /proc from outside misses up to one interval before the exit.
import { writeFileSync } from 'node:fs';

const out = process.env.BENCH_CPU_OUT;
if (out) {
  process.on('exit', () => {
    const cpu = process.cpuUsage();
    const usage = process.resourceUsage();
    writeFileSync(out, JSON.stringify({ userUs: cpu.user, systemUs: cpu.system, maxRssKb: usage.maxRSS }));
  });
}
