/** What `status`, `jobs` and `retry` share: the config (credentials not needed) and the way to the jobs. */
import { loadConfig } from '../config/load.ts';
import { openJobsAccess, type JobsAccess } from '../admin/client.ts';

export async function jobsAccessFor(configPath: string | undefined): Promise<JobsAccess> {
  const config = loadConfig({ argvConfigPath: configPath, env: process.env, cwd: process.cwd(), checkCredentials: false, requireWatchFolders: false });
  return openJobsAccess({
    stateDir: config.stateDir,
    folders: config.watch.folders.map((f) => ({ path: f.path, destination: f.destination })),
    storeUrl: config.store.url,
    leaseTimeoutMs: config.store.leaseTimeoutSeconds * 1000,
  });
}
