/** The JSON values dr-wandb keeps: parsed W&B JSON, with integers beyond 2^53 as bigint (src/model/json.ts). */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}
