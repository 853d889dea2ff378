/**
 * A read-only, expiring SAS URL for one model blob, signed with the storage account key of the
 * trainer's connection string. The URL is a secret: it is put in the twin, never printed or logged
 * (messages show the blob name only).
 */
import { BlobSASPermissions, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { safeErrorMessage } from '../../sync/redact.js';
import { TrainerError } from '../errors.js';

export const DEFAULT_SAS_HOURS = 24 * 7;

/** Throws unless the container's credential can sign URLs (an account key, not a SAS URL). */
export function checkCanSign(container: ContainerClient): void {
  if (!(container.credential instanceof StorageSharedKeyCredential)) {
    throw new TrainerError(
      'PW_TRAINER_NOT_CONFIGURED',
      'deploy signs model URLs with the storage account key: set PUMPWATCH_BLOB_CONNECTION_STRING with an AccountKey (a SAS URL cannot sign new URLs)',
    );
  }
}

export async function readOnlyUrl(container: ContainerClient, blobName: string, expiresOn: Date): Promise<string> {
  checkCanSign(container);
  try {
    return await container.getBlobClient(blobName).generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn });
  } catch (err) {
    throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `cannot sign a URL for ${blobName}: ${safeErrorMessage(err)}`, { cause: err });
  }
}
