import { databaseContract } from './database.contract.ts'

databaseContract('postgres')
