/** A setting from the environment: its value trimmed, or undefined when unset or blank (blank means the default). */
export function envSetting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === "" ? undefined : v;
}
